"""How much of the preprocessed data training keeps in memory: MONAI's ``CacheDataset`` ``cache_rate``.

Planned bundles cache every deterministic step (loading, resampling, cropping, normalisation, class locations), so a
training step only crops and augments. That holds the training and validation cases at the target spacing in
float32, image channels and label: ``voxels × (channels + 1) × 4`` bytes a case. A dataset of large CT scans (a
hundred 512 × 512 × 400 volumes: about 100 GiB) would not fit, and the run would be killed for memory before its first
step; so the plan caches the share of the cases that fits in :data:`CACHE_SHARE` of the memory available when it
is made, and the others are read and preprocessed each time they are drawn (slower steps, no crash).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monai_unet.plan.fingerprint import Fingerprint
from monai_unet.plan.geometry import case_shape_at

__all__ = ["CACHE_SHARE", "cache_rate", "cached_bytes"]

#: Share of the available memory the cache may take (the network, its activations, the batch and the validation's
#: full-volume tiles need the rest).
CACHE_SHARE = 0.5


def cached_bytes(
    fp: Fingerprint, names: Sequence[str], spacing: Sequence[float] | None, scale: float, cropped: bool
) -> int:
    """Bytes the caches hold for the cases ``names`` (a name listed twice, in training and validation, counts twice):
    float32 image channels and label at the target ``spacing`` (or pictures scaled by ``scale``), cropped to the
    nonzero region when ``cropped``."""
    by_name = {c.name: c for c in fp.cases}
    total = 0.0
    for name in names:
        case = by_name[name]
        total += float(np.prod(case_shape_at(case, spacing, scale, cropped))) * (fp.channels + 1) * 4
    return int(total)


def cache_rate(needed: int, available: int | None) -> tuple[float, str]:
    """The ``cache_rate`` for caches of ``needed`` bytes with ``available`` bytes of memory (None: unknown, cache
    everything), with the reason."""
    gib = 2**30
    if available is None:
        return 1.0, f"every case is cached ({needed / gib:.2f} GiB; the available memory is unknown here)."
    if needed <= CACHE_SHARE * available:
        # not the free memory itself: it moves from one call to the next, and the plan must not (same data, same plan)
        return 1.0, f"every case is cached: {needed / gib:.2f} GiB, under {CACHE_SHARE:.0%} of the memory available."
    rate = float(np.floor(100 * CACHE_SHARE * available / needed) / 100)
    return rate, (
        f"caching every case would take {needed / gib:.1f} GiB of the {available / gib:.1f} GiB available, so "
        f"{rate:.0%} of them are cached ({CACHE_SHARE:.0%} of the memory) and the others are read and preprocessed "
        "each time they are drawn: slower steps than planned, but no run killed for memory."
    )
