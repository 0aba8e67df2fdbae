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
            multi-component pixels (RGB). For DICOM, x runs along a row (column index), y down the rows,
            z along the slice normal.
        origin: LPS position (mm) of the centre of voxel (0, 0, 0); shape (ndim,).
        spacing: voxel size (mm) along x, y, z; shape (ndim,).
        direction: (ndim, ndim) matrix whose columns are the LPS unit vectors of the x, y, z axes.
        meta: format-specific metadata (DICOM UIDs, source files, ...), copied into the MetaTensor's meta dict.
    """

    array: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self.spacing)

    def grid(self) -> VoxelGrid:
        """The voxel grid of the spatial axes."""
        return VoxelGrid(
            size=tuple(int(s) for s in self.array.shape[: self.spatial_ndim]),
            spacing=tuple(float(s) for s in self.spacing),
            origin=tuple(float(o) for o in self.origin),
            direction=np.asarray(self.direction, dtype=np.float64),
        )
