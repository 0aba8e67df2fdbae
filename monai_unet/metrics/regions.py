"""Dice of regions that are unions of classes (nnU-Net v2's overlapping labels: BraTS's whole tumour, tumour core
and enhancing tumour), from one-hot predictions and labels, for MONAI's ``MeanDice`` handler."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["region_maps"]


def _regions(one_hot: torch.Tensor, regions: Sequence[Sequence[int]]) -> torch.Tensor:
    """``(C, *spatial)`` one-hot map → ``(1 + R, *spatial)``: outside every region, then each region's mask."""
    inside = [one_hot[list(classes)].sum(dim=0, keepdim=True).clamp(max=1) for classes in regions]
    outside = 1 - one_hot[sorted({c for classes in regions for c in classes})].sum(dim=0, keepdim=True).clamp(max=1)
    return torch.cat([outside, *inside])


def region_maps(
    output: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]], regions: Sequence[Sequence[int]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(predictions, labels)``, each a list of one-hot ``(C, *spatial)`` tensors (``from_engine``'s output) → the
    same pair as ``(1 + R, *spatial)`` maps of the ``regions`` (each a list of class indices) after a channel
    outside them all, so that a Dice without background averages the regions."""
    predictions, labels = output
    return [_regions(p, regions) for p in predictions], [_regions(y, regions) for y in labels]
