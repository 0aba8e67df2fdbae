"""Where the training patches are centred: nnU-Net's foreground oversampling written as the class ratios of MONAI's
``RandCropByLabelClassesd``, with a share for each foreground class that does not shrink as classes are added.

nnU-Net forces one patch in three to contain foreground (a foreground class chosen at random) and takes the others
anywhere. A patch taken anywhere is centred on class ``c`` with probability ``f_c``, the fraction of the voxels in
``c``; so with a share ``q`` of the patches forced onto the ``K`` foreground classes, the centre of a planned patch is
of class ``c`` with probability

    p_0 = (1 - q) f_0            (background)
    p_c = (1 - q) f_c + q / K    (each of the K foreground classes)

nnU-Net's ``q`` = 1/3 leaves each rare class ``1 / (3 K)`` of the centres: one patch in nine for the three cardiac
structures of ACDC. nnU-Net trains ~250,000 patches, a CPU budget ~1,200 batches; so here every foreground class is
given at least ``MIN_CLASS_SHARE`` (2/9) of the forced centres, ``q = clamp(K * 2/9, 1/3, 2/3)``: one class keeps
nnU-Net's third (ISBI's membranes, 22 % of the pixels, lost every measure with two in three), two get 4/9, three or
more 2/3, and one patch in three is always taken anywhere, so background far from any structure is still seen
(ACDC, three seeds: mean Dice 0.838 / 0.832 / 0.833 against 0.831 / 0.829 / 0.806 with ``q`` = 1/3,
``benchmarks/RESULTS.md``).

``K`` counts the classes present in the dataset: a class named in ``labels`` but in no case (a subset of a larger
label list, such as TotalSegmentator's 117 classes) gets no centres, instead of a share that MONAI's crop would hand
back to every class, background included, diluting the forced foreground.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai_unet.errors import listed

__all__ = ["FORCED_FOREGROUND", "MAX_FORCED_FOREGROUND", "MIN_CLASS_SHARE", "choose_sampling", "forced_share"]

#: Least share of the patches forced to be centred on a foreground class (nnU-Net's ``oversample_foreground_percent``).
FORCED_FOREGROUND = 1.0 / 3.0
#: Share of the forced centres each present foreground class asks for, while the total stays within the bounds.
MIN_CLASS_SHARE = 2.0 / 9.0
#: Most of the patches forced onto foreground: one patch in three is always taken anywhere.
MAX_FORCED_FOREGROUND = 2.0 / 3.0


def forced_share(foreground_classes: int) -> float:
    """The share ``q`` of the patches centred on a foreground class when ``foreground_classes`` classes are present:
    ``clamp(K * MIN_CLASS_SHARE, FORCED_FOREGROUND, MAX_FORCED_FOREGROUND)`` (1/3 for one class, 4/9 for two, 2/3
    for three or more)."""
    return min(MAX_FORCED_FOREGROUND, max(FORCED_FOREGROUND, foreground_classes * MIN_CLASS_SHARE))


def choose_sampling(fractions: Sequence[float], names: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The patch-centre ratios per class (background first) for the training set's class ``fractions`` (fraction of
    all voxels in each class, summing to 1), with the reason; ``names`` are the class names."""
    if len(fractions) < 2 or len(fractions) != len(names):
        raise ValueError(f"need a fraction per class and at least two classes, got {list(fractions)} for {list(names)}")
    present = [f > 0 for f in fractions[1:]]
    foreground = max(sum(present), 1)
    forced = forced_share(foreground)
    free = 1.0 - forced
    ratios = [free * fractions[0]] + [
        free * f + forced / foreground if here else 0.0 for f, here in zip(fractions[1:], present, strict=True)
    ]
    ratios = [round(r, 4) for r in ratios]
    shares = ", ".join(
        f"{name} {f:.1%} -> {r:.0%}" for name, f, r in zip(names, fractions, ratios, strict=True) if f > 0
    )
    absent = [name for name, here in zip(names[1:], present, strict=True) if not here]
    if foreground == 1:
        how = (
            "one patch in three is centred on the foreground class, the others anywhere, as nnU-Net does (two in "
            "three lost every measure on ISBI, where membranes are 22 % of the pixels)"
        )
    else:
        how = (
            f"{forced:.0%} of the patches are centred on a foreground class (each of the {foreground} equally often, "
            f"2/9 per class, kept between 1/3 and 2/3 in all, where nnU-Net's one in three would leave each "
            f"1/{3 * foreground}), "
            "the others anywhere (ACDC's three classes: mean Dice up on three seeds of three)"
        )
    reason = f"{how}: share of the voxels -> share of the patch centres: {shares} (benchmarks/RESULTS.md)."
    if absent:
        reason += f" Classes in no case get no centres: {len(absent)} class(es), {listed(absent)}."
    return {"forced_foreground": round(forced, 4), "class_ratios": ratios}, reason
