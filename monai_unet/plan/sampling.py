"""Where the training patches are centred: nnU-Net's foreground oversampling written as the class ratios of MONAI's
``RandCropByLabelClassesd``.

nnU-Net forces one patch in three to contain foreground (a foreground class chosen at random) and takes the others
anywhere. A patch taken anywhere is centred on class ``c`` with probability ``f_c``, the fraction of the voxels in
``c``; so the centre of a planned patch is of class ``c`` with probability

    p_0 = (1 - q) f_0            (background)
    p_c = (1 - q) f_c + q / K    (each of the K foreground classes)

with ``q`` = 1/3. Rare classes get about ``q / K`` of the patches; common ones (ISBI's membranes, 22 % of the pixels)
are centred about as often as a random patch would be. ``q`` = 2/3 lost every measure on ISBI; with several rare
classes, 2/9 per class (2/3 in all for three or more) won ACDC's three classes on three seeds but not BRATS's four
labels (three runs: one lost, one won, one level), so ``q`` stays 1/3 whatever ``K`` (``benchmarks/RESULTS.md``).

``K`` counts the classes present in the dataset: a class named in ``labels`` but in no case (a subset of a larger
label list, such as TotalSegmentator's 117 classes) gets no centres, instead of a share that MONAI's crop would hand
back to every class, background included, diluting the forced foreground.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai_unet.errors import listed

__all__ = ["FORCED_FOREGROUND", "choose_sampling"]

#: Share of the patches forced to be centred on a foreground class (nnU-Net's ``oversample_foreground_percent``).
FORCED_FOREGROUND = 1.0 / 3.0


def choose_sampling(fractions: Sequence[float], names: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The patch-centre ratios per class (background first) for the training set's class ``fractions`` (fraction of
    all voxels in each class, summing to 1), with the reason; ``names`` are the class names."""
    if len(fractions) < 2 or len(fractions) != len(names):
        raise ValueError(f"need a fraction per class and at least two classes, got {list(fractions)} for {list(names)}")
    present = [f > 0 for f in fractions[1:]]
    foreground = max(sum(present), 1)
    free = 1.0 - FORCED_FOREGROUND
    ratios = [free * fractions[0]] + [
        free * f + FORCED_FOREGROUND / foreground if here else 0.0
        for f, here in zip(fractions[1:], present, strict=True)
    ]
    ratios = [round(r, 4) for r in ratios]
    shares = ", ".join(
        f"{name} {f:.1%} -> {r:.0%}" for name, f, r in zip(names, fractions, ratios, strict=True) if f > 0
    )
    absent = [name for name, here in zip(names[1:], present, strict=True) if not here]
    reason = (
        f"one patch in three is centred on a foreground class (each equally often), the others anywhere, as nnU-Net "
        f"does: share of the voxels -> share of the patch centres: {shares}. Centring two patches in three on "
        "foreground lost on every measure on ISBI, where membranes are 22 % of the pixels, and was level on BRATS's "
        "four labels (benchmarks/RESULTS.md)."
    )
    if absent:
        reason += f" Classes in no case get no centres: {len(absent)} class(es), {listed(absent)}."
    return {"forced_foreground": round(FORCED_FOREGROUND, 4), "class_ratios": ratios}, reason
