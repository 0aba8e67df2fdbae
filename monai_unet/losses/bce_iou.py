"""The seed's loss for binary segmentation: binary cross-entropy minus soft IoU plus one, on sigmoid outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.losses.ignore import valid_voxels

__all__ = ["BCEIoULoss"]


class BCEIoULoss(nn.Module):
    """L = BCE(p, t) − IoU(p, t) + 1, with p = sigmoid(input) and the soft IoU Σ p t / (Σ p + Σ t − Σ p t).

    The sums of the IoU run over the whole batch; the BCE is the mean over the counted voxels. L ≥ 0 and is 0 only
    for a perfect, confident prediction. Voxels labelled ``ignore_index`` enter neither term.

    Args:
        sigmoid: True: ``input`` is logits (the sigmoid is applied here, with the numerically stable BCE on logits);
            False: ``input`` is already probabilities in [0, 1].
        ignore_index: label value of unannotated voxels, or ``None``.
        smooth: added to the IoU's numerator and denominator (an empty target and prediction give IoU 1).

    Shapes:
        input ``(B, 1, *spatial)``; target ``(B, 1, *spatial)`` with values 0, 1 (and ``ignore_index``).
    """

    def __init__(self, sigmoid: bool = True, ignore_index: int | None = None, smooth: float = 1e-6) -> None:
        super().__init__()
        self.sigmoid = sigmoid
        self.ignore_index = ignore_index
        self.smooth = smooth

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape != target.shape or input.shape[1] != 1:
            raise ValueError(
                f"input and target must both be (B, 1, *spatial), got {tuple(input.shape)} and {tuple(target.shape)}"
            )
        mask = valid_voxels(target, self.ignore_index)
        truth = target if mask is None else torch.where(mask, target, torch.zeros_like(target))
        truth = truth.to(input.dtype)
        if self.sigmoid:
            bce = F.binary_cross_entropy_with_logits(input, truth, reduction="none")
            probability = torch.sigmoid(input)
        else:
            bce = F.binary_cross_entropy(input, truth, reduction="none")
            probability = input
        if mask is not None:
            bce, probability, truth = bce * mask, probability * mask, truth * mask
        count = bce.numel() if mask is None else mask.sum().clamp_min(1)
        intersection = (probability * truth).sum()
        union = probability.sum() + truth.sum() - intersection
        iou = (intersection + self.smooth) / (union + self.smooth)
        return bce.sum() / count - iou + 1.0
