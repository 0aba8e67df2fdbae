"""Ignore-label masking (the 3D U-Net's sparse annotation): voxels labelled ``ignore_index`` contribute nothing."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

__all__ = ["IgnoreLabelDiceCELoss", "valid_voxels"]


def valid_voxels(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor | None:
    """Boolean mask of the voxels that count: ``target != ignore_index``, or ``None`` when nothing is ignored.

    Args:
        target: label indices ``(B, 1, *spatial)``.
        ignore_index: the label value of unannotated voxels, or ``None``.
    """
    if ignore_index is None:
        return None
    if target.shape[1] != 1:
        raise ValueError(
            f"ignore_index needs label indices of shape (B, 1, *spatial), got a target of shape {tuple(target.shape)}"
        )
    return target != ignore_index


class IgnoreLabelDiceCELoss(DiceCELoss):
    """MONAI's ``DiceCELoss`` with the voxels labelled ``ignore_index`` masked out of both terms.

    The Dice term multiplies prediction and target by the mask after the activation (MONAI ``DiceLoss``'s own
    ``ignore_index``), so masked voxels enter neither the intersection nor the sums; the cross-entropy term (or the
    binary cross-entropy, for one output channel) averages over the unmasked voxels only. A masked voxel's
    prediction therefore changes neither the loss nor any gradient.

    Args:
        ignore_index: label value of unannotated voxels (e.g. 255, or a class index such as 2 in the 3D U-Net's
            sparse annotation). It may lie outside the class range.
        **kwargs: the arguments of ``monai.losses.DiceCELoss`` (``to_onehot_y``, ``softmax``, ``sigmoid``,
            ``lambda_dice``, ``lambda_ce``, ...).

    Shapes:
        input ``(B, C, *spatial)`` logits; target ``(B, 1, *spatial)`` label indices (one-hot targets cannot say
        which voxels are unannotated).
    """

    def __init__(self, ignore_index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_index = ignore_index
        self.dice.ignore_index = ignore_index
        self.cross_entropy.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mask = valid_voxels(target, self.ignore_index)
        assert mask is not None
        dice = self.dice(input, target)
        if input.shape[1] != 1:
            ce = self.ce(input, target)
        else:
            clean = torch.where(mask, target, torch.zeros_like(target)).to(input.dtype)
            per_voxel = F.binary_cross_entropy_with_logits(
                input, clean, pos_weight=self.binary_cross_entropy.pos_weight, reduction="none"
            )
            ce = (per_voxel * mask).sum()
            if self.binary_cross_entropy.reduction == "mean":
                ce = ce / mask.sum().clamp_min(1)
        return self.lambda_dice * dice + self.lambda_ce * ce
