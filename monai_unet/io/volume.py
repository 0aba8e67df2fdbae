"""The in-between form of a read image: voxels in (x, y, z) order with their LPS geometry and source metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["Volume", "lps_affine", "ras_affine", "reversed_axes_contiguous", "reversed_axes_view"]

_BLOCK = 32  # voxels per block side in the blocked transpose


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


def reversed_axes_contiguous(array: np.ndarray, spatial_dims: int, dtype: DTypeLike = None) -> np.ndarray:
    """C-contiguous copy of ``array`` with its spatial axes reversed (ITK's (z, y, x) buffer → (x, y, z)), converted
    to ``dtype`` in the same pass.

    MONAI's ``LoadImage`` makes every array C-contiguous and converts it to its ``dtype`` (float32 by default), so
    an array returned in any other form is copied there once more. A plain ``np.ascontiguousarray`` of the reversed
    view reads the source with a stride of a whole slice; this copy goes block by block (32³ voxels: source and
    destination block stay in L2 cache) and numpy converts to the target type while it assigns. On a 512×512×300
    int16 volume to float32 that is about 3.5× faster than ``np.ascontiguousarray`` and 2× faster than tiles spanning
    all of z followed by a conversion pass (``benchmarks/results/io.md``). A trailing component axis (RGB) stays last.

    Args:
        array: voxels with ``spatial_dims`` spatial axes first, in reversed order (ITK: [t,] z, y, x), then an
            optional component axis.
        spatial_dims: number of spatial (and time) axes, 2 to 4.
        dtype: type of the result; None keeps ``array.dtype``.
    """
    dtype = np.dtype(array.dtype if dtype is None else dtype)
    if spatial_dims != 3 or array.ndim != 3:
        return np.ascontiguousarray(array.transpose(_reversed_order(spatial_dims, array.ndim)), dtype=dtype)
    nz, ny, nx = array.shape
    out = np.empty((nx, ny, nz), dtype=dtype)
    b = _BLOCK
    for k in range(0, nz, b):
        for i in range(0, nx, b):
            for j in range(0, ny, b):
                out[i : i + b, j : j + b, k : k + b] = array[k : k + b, j : j + b, i : i + b].T
    return out


def reversed_axes_view(array: np.ndarray, spatial_dims: int, dtype: DTypeLike = None) -> np.ndarray:
    """``array`` with its spatial axes reversed as a view (no reordering copy), converted to ``dtype`` first.

    The result is indexed (x, y, z) like :func:`reversed_axes_contiguous` but keeps the source's memory order
    (Fortran order for a C-contiguous buffer, as nibabel returns NIfTI voxels). Converting before transposing
    walks memory in order, which costs a small fraction of the reordering copy. With ``dtype`` None or equal to
    ``array.dtype`` a writable ``array`` is not copied (pass a buffer the caller owns); a read-only one is copied in
    memory order, so that the result can always be written to.

    Args:
        array: voxels in ITK order ([t,] z, y, x), optionally with a trailing component axis.
        spatial_dims: number of spatial (and time) axes, 2 to 4.
        dtype: type of the result; None keeps ``array.dtype``.
    """
    if (dtype is not None and np.dtype(dtype) != array.dtype) or not array.flags.writeable:
        array = array.astype(array.dtype if dtype is None else dtype, order="K")
    return array.transpose(_reversed_order(spatial_dims, array.ndim))


def _reversed_order(spatial_dims: int, ndim: int) -> tuple[int, ...]:
    return tuple(reversed(range(spatial_dims))) + tuple(range(spatial_dims, ndim))
