"""Losses: the paper's weighted cross-entropy, the seed's BCE-IoU, ignore-label masking, skeleton recall for thin
classes."""

from __future__ import annotations

from monai_unet.losses.bce_iou import BCEIoULoss
from monai_unet.losses.ignore import IgnoreLabelDiceCELoss, valid_voxels
from monai_unet.losses.skeleton_recall import DiceCESkeletonRecallLoss, tubed_skeleton
from monai_unet.losses.weighted_cross_entropy import WeightedCrossEntropyLoss

__all__: list[str] = [
    "BCEIoULoss",
    "DiceCESkeletonRecallLoss",
    "IgnoreLabelDiceCELoss",
    "WeightedCrossEntropyLoss",
    "tubed_skeleton",
    "valid_voxels",
]
