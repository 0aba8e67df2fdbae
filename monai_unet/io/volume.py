"""The in-between form of a read image: voxels in (x, y, z) order with their LPS geometry and source metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monai_unet.io.grid import VoxelGrid

__all__ = ["Volume"]


@dataclass
class Volume:
    """Voxels and the physical grid they lie on, in DICOM/ITK (LPS) terms.

    Args:
        array: voxels indexed (x, y, z) for 3D, (x, y) for 2D, with an optional trailing channel axis for
            multi-component pixels (RGB) or the volumes of a 4D file. For DICOM, x runs along a row (column index),
            y down the rows, z along the slice normal.
        grid: where the voxels lie (:class:`~monai_unet.io.grid.VoxelGrid`: origin, spacing in mm, direction, LPS);
            its size is the array's spatial shape.
        meta: format-specific metadata (DICOM UIDs, source files, ...), copied into the MetaTensor's meta dict.

    Raises:
        ValueError: the array's spatial shape is not the grid's size.
    """

    array: np.ndarray
    grid: VoxelGrid
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.array.shape[: self.grid.ndim]) != self.grid.size:
            raise ValueError(f"voxels of shape {self.array.shape} do not lie on a grid of size {self.grid.size}")

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return self.grid.ndim
