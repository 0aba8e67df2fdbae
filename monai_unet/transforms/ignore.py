"""Voxels nobody annotated (an ``ignore`` label, the 3D U-Net's sparse annotation) taken out of a validation metric.

Dice, HD95 and the per-class component check compare one-hot maps of ``C`` classes, so the label's ignore index
(``C``, past the classes) cannot be one-hot encoded as it is. Setting the prediction and the label both to the
background there (after the argmax, before the one-hot step) leaves every foreground class's true positives, false
positives and false negatives as they are on the annotated voxels: a foreground Dice that does not see the
unannotated ones (the background's own Dice, left out of the mean, would count them as agreement).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["MaskIgnored", "MaskIgnoredd"]


class MaskIgnored(Transform):
    """``img`` with the voxels where ``label`` is ``ignore_index`` set to 0 (the background).

    Args:
        ignore_index: the label's index of unannotated voxels.

    Shapes: ``img`` and ``label`` ``(1, *spatial)`` class indices (or ``label`` broadcastable to ``img``).
    """

    def __init__(self, ignore_index: int) -> None:
        self.ignore_index = ignore_index

    def __call__(self, img: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        unannotated = torch.as_tensor(label, device=img.device) == self.ignore_index
        return torch.where(unannotated, torch.zeros_like(img), img)


class MaskIgnoredd(MapTransform):
    """Dictionary form of :class:`MaskIgnored`: every key in ``keys`` (the prediction's class indices, and the label
    itself) set to 0 where ``label_key`` holds ``ignore_index``; the mask is read before any key changes."""

    def __init__(
        self, keys: KeysCollection, label_key: str, ignore_index: int, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.masker = MaskIgnored(ignore_index)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        label = torch.as_tensor(d[self.label_key]).clone()
        for key in self.key_iterator(d):
            d[key] = self.masker(d[key], label)
        return d
