"""Dice of a region that is a union of classes (nnU-Net v2's overlapping labels: BraTS's whole tumour, tumour core
and enhancing tumour), from one-hot predictions and labels, for MONAI's ``MeanDice`` handler."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["region_pair"]


def _region(one_hot: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """``(C, *spatial)`` one-hot map → ``(2, *spatial)``: outside and inside the union of ``classes``."""
    inside = one_hot[list(classes)].sum(dim=0, keepdim=True).clamp(max=1)
    return torch.cat([1 - inside, inside])


def region_pair(
    output: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]], classes: Sequence[int]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(predictions, labels)``, each a list of one-hot ``(C, *spatial)`` tensors (``from_engine``'s output) →
    the same pair as two-channel maps of the region ``classes`` (class indices), for a Dice without background."""
    predictions, labels = output
    return [_region(p, classes) for p in predictions], [_region(y, classes) for y in labels]
