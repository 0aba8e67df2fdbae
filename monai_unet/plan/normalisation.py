"""The planner's intensity normalisation by modality: CT clipped to the foreground percentiles and z-scored with the
dataset's foreground statistics, 8-bit RGB scaled to 0-1, anything else z-scored per case (inside the nonzero region
when that region is much smaller than the image, as for skull-stripped MR)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_unet.plan.fingerprint import Fingerprint

__all__ = ["choose_normalisation"]


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
    crop = float(np.median([c.nonzero_crop_fraction for c in fp.cases]))
    nonzero = crop <= 0.75
    where = (
        f"inside the nonzero region (cropping to it keeps {crop:.0%} of the median case)"
        if nonzero
        else "over the whole image"
    )
    return {"scheme": "zscore", "nonzero": nonzero}, (
        f"{', '.join(modality) or 'non-CT'} intensities have no fixed unit, so each case is z-scored per "
        f"channel {where}."
    )
