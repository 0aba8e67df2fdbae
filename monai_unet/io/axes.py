"""Reversing the spatial axes of a voxel array between ITK's buffer order ``(z, y, x)`` and MONAI's index order
``(x, y, z)``, in whichever direction: the one copy every reader and writer makes, done fast."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["reversed_axes_contiguous", "reversed_axes_view"]

_BLOCK = 32  # voxels per block side in the blocked transpose


def reversed_axes_contiguous(
    array: np.ndarray, spatial_dims: int, dtype: DTypeLike = None, copy: bool = True
) -> np.ndarray:
    """``array`` with its spatial axes reversed and C-contiguous (ITK's (z, y, x) buffer → (x, y, z), and back:
    MONAI's (i, j, k) → the (k, j, i) buffer SimpleITK and NRRD want), converted to ``dtype`` in the same pass.
    With ``copy=False`` an ``array`` that already has that layout (Fortran order) and type is returned as a view
    (writers handing voxels to SimpleITK); the default always copies, as readers need (their source may be a view of
    an ITK buffer that dies with its image).

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
        copy: always return a new array (False: a view where no reordering or conversion is needed).
    """
    dtype = np.dtype(array.dtype if dtype is None else dtype)
    reversed_view = array.transpose(_reversed_order(spatial_dims, array.ndim))
    if not copy and reversed_view.flags.c_contiguous and dtype == array.dtype:
        return reversed_view  # already in that layout (a Fortran-ordered array, as the reader returns): no copy
    if spatial_dims != 3 or array.ndim != 3:
        return np.array(reversed_view, dtype=dtype, order="C")
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
