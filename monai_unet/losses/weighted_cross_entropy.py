"""The paper's loss: softmax cross-entropy weighted per voxel by the weight map (Ronneberger et al. 2015, eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.losses.ignore import valid_voxels

__all__ = ["WeightedCrossEntropyLoss"]


class WeightedCrossEntropyLoss(nn.Module):
    """Pixel-wise softmax cross-entropy times a per-voxel weight: E = Σ_x w(x) · (−log p_ℓ(x)(x)).

    With every weight 1 it equals ``torch.nn.functional.cross_entropy``. Voxels labelled ``ignore_index`` contribute
    nothing (and the mean runs over the other voxels only).

    Args:
        ignore_index: label value of unannotated voxels, or ``None``.
        reduction: ``"mean"`` (over the counted voxels), ``"sum"`` or ``"none"`` (the weighted per-voxel loss
            ``(B, 1, *spatial)``, zero at ignored voxels).
        weight_in_target: if True, the weight map travels as the second channel of the target
            (``(B, 2, *spatial)`` = label, weight), so the loss fits MONAI's ``SupervisedTrainer``, which calls
            ``loss(pred, label)``: concatenate the label and the :class:`~monai_unet.transforms.BorderWeightMapd`
            output with ``ConcatItemsd``.

    Shapes:
        input ``(B, C, *spatial)`` logits (no softmax); target ``(B, 1, *spatial)`` label indices; weight
        ``(B, 1, *spatial)`` or ``None`` (all ones).
    """

    def __init__(self, ignore_index: int | None = None, reduction: str = "mean", weight_in_target: bool = False):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.weight_in_target = weight_in_target

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if self.weight_in_target:
            if target.shape[1] != 2 or weight is not None:
                raise ValueError(f"weight_in_target expects a (B, 2, *spatial) target, got {tuple(target.shape)}")
            target, weight = target[:, :1], target[:, 1:]
        if target.shape[1] != 1 or target.shape[2:] != input.shape[2:] or target.shape[0] != input.shape[0]:
            raise ValueError(
                f"target must be label indices (B, 1, *spatial) matching input {tuple(input.shape)}, "
                f"got {tuple(target.shape)}"
            )
        mask = valid_voxels(target, self.ignore_index)
        labels = target if mask is None else torch.where(mask, target, torch.zeros_like(target))
        per_voxel = F.cross_entropy(input, labels[:, 0].long(), reduction="none")[:, None]
        if weight is not None:
            if weight.shape != target.shape:
                raise ValueError(
                    f"weight must have the target's shape {tuple(target.shape)}, got {tuple(weight.shape)}"
                )
            per_voxel = per_voxel * weight
        if mask is not None:
            per_voxel = per_voxel * mask
        if self.reduction == "none":
            return per_voxel
        total = per_voxel.sum()
        if self.reduction == "sum":
            return total
        count = per_voxel.numel() if mask is None else mask.sum().clamp_min(1)
        return total / count
