"""The in-between form of a read image: voxels in (x, y, z) order with their LPS geometry and source metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Volume", "lps_affine", "ras_affine", "reversed_axes_contiguous"]

_BLOCK = 64  # voxels per tile side in the blocked transpose (fits a tile pair in L2 cache)


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


def lps_affine(origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Voxel index → LPS mm: the (ndim+1)×(ndim+1) affine ``[direction · diag(spacing) | origin]``."""
    ndim = len(spacing)
    affine = np.eye(ndim + 1)
    affine[:ndim, :ndim] = np.asarray(direction, dtype=np.float64) @ np.diag(np.asarray(spacing, dtype=np.float64))
    affine[:ndim, ndim] = origin
    return affine


def ras_affine(origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Voxel index → RAS mm (MONAI's and NIfTI's convention): the LPS affine with x and y negated."""
    affine = lps_affine(origin, spacing, direction)
    flip = np.ones(len(affine))
    flip[: min(2, len(affine) - 1)] = -1.0
    return flip[:, None] * affine


def reversed_axes_contiguous(array: np.ndarray, spatial_dims: int) -> np.ndarray:
    """C-contiguous copy of ``array`` with its spatial axes reversed: ITK's (z, y, x) buffer → (x, y, z).

    MONAI's ``LoadImage`` makes every array C-contiguous, so a transposed view would be copied there anyway;
    numpy copies a fully reversed 3D view about twice as slowly as this tile-by-tile copy, which keeps source
    and destination tiles in cache. A trailing component axis (RGB) stays last.

    Args:
        array: voxels with ``spatial_dims`` spatial axes first, in reversed order (ITK: [t,] z, y, x), then an
            optional component axis.
        spatial_dims: number of spatial (and time) axes, 2 to 4.
    """
    if spatial_dims != 3 or array.ndim != 3:
        order = tuple(reversed(range(spatial_dims))) + tuple(range(spatial_dims, array.ndim))
        return np.ascontiguousarray(array.transpose(order))
    nz, ny, nx = array.shape
    out = np.empty((nx, ny, nz), dtype=array.dtype)
    for i in range(0, nx, _BLOCK):
        for j in range(0, ny, _BLOCK):
            out[i : i + _BLOCK, j : j + _BLOCK, :] = array[:, j : j + _BLOCK, i : i + _BLOCK].T
    return out
