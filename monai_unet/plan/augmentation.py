"""The planner's augmentation: our elastic deformation with rotation, zoom and flips in one resampling (in-plane
rotation only for anisotropic 3D data), then MONAI's intensity scale, shift, gamma and noise
(:func:`monai_unet.plan.pipeline.augmentation_steps` turns these settings into transforms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ROTATE_RADIANS", "choose_augmentation"]

ROTATE_RADIANS = 0.26  # ±15°


def choose_augmentation(dims: int, patch: Sequence[int], anisotropic_axis: int | None) -> tuple[dict[str, Any], str]:
    """The augmentation settings for a ``patch`` (voxels) and the reason; ``anisotropic_axis`` is the coarse axis of
    anisotropic 3D data (rotation about it only), or ``None``."""
    rotate_range: float | list[float] = ROTATE_RADIANS
    if dims == 3 and anisotropic_axis is not None:
        rotate_range = [ROTATE_RADIANS if a == anisotropic_axis else 0.0 for a in range(3)]
    augmentation = {
        "elastic_sigma_voxels": [round(0.03 * p, 3) for p in patch],
        "num_control_points": 3,
        "rotate_range": rotate_range,
        "zoom_range": [0.85, 1.2],
        "flip_axes": list(range(dims)),
        "margin": [min(8, max(0, p // 8)) for p in patch],
    }
    reason = (
        "elastic deformation on a 3-point control grid (σ = 3 % of the patch per axis), rotation ±15°"
        + (" about the coarse axis only (anisotropic data)" if isinstance(rotate_range, list) else "")
        + ", zoom 0.85-1.2 and flips of every axis, in one resampling; intensity scale, shift, gamma and noise."
    )
    return augmentation, reason
