"""The planner's augmentation: our elastic deformation with rotation, zoom and flips in one resampling (in-plane
rotation only for anisotropic 3D data), then MONAI's intensity scale, shift, gamma and noise
(:func:`monai_unet.plan.pipeline.augmentation_steps` turns these settings into transforms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ROTATE_RADIANS", "choose_augmentation", "patch_augmentation_steps"]

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


def patch_augmentation_steps(augmentation: dict[str, Any]) -> list[dict[str, Any]]:
    """The random steps applied to every cropped patch, as config entries (``"image"`` and ``"label"`` keys; the
    output size is the config id ``patch_size``): the training pipeline's tail, and what the calibration times."""
    return [
        {
            "_target_": "monai_unet.transforms.RandElasticGridd",
            "keys": ["image", "label"],
            "mode": ["bilinear", "nearest"],
            "prob": 1.0,
            "num_control_points": augmentation["num_control_points"],
            "sigma": augmentation["elastic_sigma_voxels"],
            "rotate_range": augmentation["rotate_range"],
            "zoom_range": augmentation["zoom_range"],
            "flip_axes": augmentation["flip_axes"],
            "spatial_size": "@patch_size",
            "padding_mode": "reflection",
            "_desc_": "elastic deformation, rotation, zoom and flips in one resampling; crops the margin away",
        },
        {"_target_": "RandScaleIntensityd", "keys": "image", "factors": 0.25, "prob": 0.15},
        {"_target_": "RandShiftIntensityd", "keys": "image", "offsets": 0.1, "prob": 0.15},
        {"_target_": "RandAdjustContrastd", "keys": "image", "gamma": [0.7, 1.5], "prob": 0.3},
        {"_target_": "RandGaussianNoised", "keys": "image", "std": 0.1, "prob": 0.1},
    ]
