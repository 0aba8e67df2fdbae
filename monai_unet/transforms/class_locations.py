"""Where each class lies in a label map, computed once per case so that foreground-oversampled crops are cheap.

MONAI's ``RandCropByLabelClassesd`` finds the voxels of every class on each call unless it is given them
(``indices_key``): on a 3D case of a few million voxels that search costs more than the crop itself, every
iteration. :class:`ClassLocationsd` finds them once, in the deterministic (cached) part of the training pipeline,
and keeps at most ``max_per_class`` per class, evenly spread in raster order without a random draw (so a resumed
run sees the same locations; nnU-Net keeps 10,000 per class for the same purpose).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["ClassLocations", "ClassLocationsd"]


class ClassLocations(Transform):
    """Flat voxel indices of each class ``0 .. num_classes - 1`` of a label map.

    Args:
        num_classes: classes to locate; a class absent from the map gets an empty array.
        max_per_class: keep at most this many indices per class, evenly strided through the raster order
            (``None``: all of them).

    Input: a label map of shape ``(1, *spatial)`` or ``(*spatial)`` holding class indices.
    Returns: a list of ``num_classes`` 1D ``int64`` arrays of indices into the flattened spatial shape, the form
    ``RandCropByLabelClassesd(indices_key=...)`` reads.
    """

    def __init__(self, num_classes: int, max_per_class: int | None = 10000) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if max_per_class is not None and max_per_class < 1:
            raise ValueError(f"max_per_class must be at least 1 (or None for all), got {max_per_class}")
        self.num_classes = num_classes
        self.max_per_class = max_per_class

    def __call__(self, label: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        values = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
        flat = values.reshape(-1)  # a leading channel of size 1 does not change the flat indices
        locations = []
        for c in range(self.num_classes):
            found = np.flatnonzero(flat == c)
            if self.max_per_class is not None and found.size > self.max_per_class:
                found = found[np.linspace(0, found.size - 1, self.max_per_class).round().astype(np.int64)]
            locations.append(found.astype(np.int64, copy=False))
        return locations


class ClassLocationsd(MapTransform):
    """Dictionary wrapper of :class:`ClassLocations`: the locations of ``key`` go to ``key + postfix``
    (default ``"label_locations"`` for ``"label"``), for ``RandCropByLabelClassesd(indices_key=...)``."""

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        max_per_class: int | None = 10000,
        postfix: str = "_locations",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.locate = ClassLocations(num_classes, max_per_class)
        self.postfix = postfix

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}{self.postfix}"] = self.locate(d[key])
        return d
