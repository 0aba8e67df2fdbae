"""Metrics not in MONAI: the ISBI 2012 pixel and Rand errors, and the maps a region's Dice is computed from (Dice,
IoU, HD95 come from MONAI)."""

from __future__ import annotations

from monai_unet.metrics.isbi import ISBIErrorMetric, best_threshold_errors, pixel_error, rand_error
from monai_unet.metrics.regions import region_maps

__all__ = ["ISBIErrorMetric", "best_threshold_errors", "pixel_error", "rand_error", "region_maps"]
