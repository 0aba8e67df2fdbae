"""Losses: the paper's weighted cross-entropy, the seed's BCE-IoU, ignore-label masking."""

from __future__ import annotations

from monai_unet.losses.bce_iou import BCEIoULoss
from monai_unet.losses.ignore import IgnoreLabelDiceCELoss, valid_voxels
from monai_unet.losses.weighted_cross_entropy import WeightedCrossEntropyLoss

__all__: list[str] = ["BCEIoULoss", "IgnoreLabelDiceCELoss", "WeightedCrossEntropyLoss", "valid_voxels"]
