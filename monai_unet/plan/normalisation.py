"""The planner's intensity normalisation by modality: CT clipped to the foreground percentiles and z-scored with the
dataset's foreground statistics, 8-bit RGB scaled to 0-1, anything else z-scored per case (inside the region off the
background when that region is much smaller than the image: the nonzero voxels of skull-stripped MR, or the voxels
above each channel's minimum where the background is a constant nonzero value)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_unet.plan.fingerprint import Fingerprint

__all__ = ["CROP_FRACTION", "choose_normalisation"]

#: Crop to the region off the background (and z-score inside it) when that keeps at most this share of the median case.
CROP_FRACTION = 0.75


def choose_normalisation(modality: Sequence[str], fp: Fingerprint) -> tuple[dict[str, Any], str]:
    """The intensity scheme for ``modality`` (the dataset's channel names) and the fingerprint, with its reason."""
    names = " ".join(modality).lower().replace("-", " ").split()
    if "ct" in names:
        stats = fp.foreground
        scheme = {
            "scheme": "ct",
            "clip": [[round(s.p00_5, 4), round(s.p99_5, 4)] for s in stats],
            "mean": [round(s.mean, 4) for s in stats],
            "std": [round(max(s.std, 1e-8), 4) for s in stats],
            "nonzero": False,
        }
        return scheme, (
            "CT: intensities are comparable across scans, so every case is clipped to the 0.5/99.5 percentiles of "
            "the labelled foreground over the dataset and z-scored with its mean and standard deviation."
        )
    if fp.channels == 3 and fp.source_dtype == "uint8":
        return {"scheme": "rgb", "nonzero": False}, "8-bit RGB pictures: each channel is scaled from 0-255 to 0-1."
    # nnU-Net's rule: z-score inside the region off the background when cropping to it shrinks the median case by
    # a quarter; the background is zero (skull-stripped MR) or, failing that, each channel's constant minimum (MR
    # z-scored after skull stripping, whose background sits at a negative value)
    for background, what in (("zero", "nonzero region"), ("minimum", "region above each channel's minimum")):
        crop = float(np.median([c.crop_fraction(background) for c in fp.cases]))
        if crop <= CROP_FRACTION:
            return {"scheme": "zscore", "nonzero": True, "background": background}, (
                f"{', '.join(modality) or 'non-CT'} intensities have no fixed unit, so each case is cropped to its "
                f"{what} (it keeps {crop:.0%} of the median case) and z-scored per channel there; the background "
                "becomes 0."
            )
    return {"scheme": "zscore", "nonzero": False}, (
        f"{', '.join(modality) or 'non-CT'} intensities have no fixed unit, so each case is z-scored per "
        "channel over the whole image."
    )
