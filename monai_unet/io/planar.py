"""Writing one 2D slice as a plain picture: class indices as 8-bit PNG, probabilities as float32 TIFF.

MONAI's ``SaveImage`` needs ITK (not SimpleITK) for TIFF; this writes through SimpleITK, atomically, and reads the
picture back before it replaces anything (SimpleITK may ignore a short write on a full disk). Pictures carry no
geometry: the grid only fixes their size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from monai_unet.io.atomic import atomic_path
from monai_unet.io.errors import ImageInputError, OutputWriteError, last_line
from monai_unet.io.grid import VoxelGrid

__all__ = ["write_planar"]


def write_planar(values: np.ndarray, grid: VoxelGrid, path: Path) -> None:
    """Write ``values`` of shape ``(C, i, j)`` (MONAI's ``(x, y)`` index order) as a picture of ``j`` rows and ``i``
    columns with ``C`` samples per pixel: ``uint8`` values as PNG, ``float32`` as TIFF (the suffix of ``path``).

    Raises:
        ImageInputError: the grid is not 2D (a picture holds one slice) or ``values`` is off it.
    """
    if grid.ndim != 2:
        raise ImageInputError(
            path, f"a picture holds one 2D slice; the image is {grid.ndim}D", "Name a .nii.gz or .seg.nrrd output"
        )
    if values.ndim != 3 or tuple(values.shape[1:]) != grid.size:
        raise ImageInputError(path, f"values of shape {tuple(values.shape)} are not (C, *{grid.size})")
    pixels = np.ascontiguousarray(np.moveaxis(values, 0, -1).transpose(1, 0, 2))  # (rows = y, columns = x, C)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    with atomic_path(path, suffix=path.suffix, verify=_reads_back(pixels)) as temporary:
        try:
            sitk.WriteImage(sitk.GetImageFromArray(pixels, isVector=pixels.ndim == 3), str(temporary))
        except RuntimeError as error:  # ITK's write errors carry no errno
            raise OutputWriteError(path, f"SimpleITK could not write it ({last_line(str(error))})") from None


def _reads_back(pixels: np.ndarray):
    """A check for :func:`~monai_unet.io.atomic.atomic_path`: the written picture reads back with exactly these
    pixels."""

    def verify(path: Path) -> None:
        try:
            back = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        except RuntimeError as error:
            raise ImageInputError(path, f"unreadable ({last_line(str(error))})") from None
        if back.shape != pixels.shape or not np.array_equal(back, pixels):
            raise ImageInputError(path, "its pixels differ from those written")

    return verify
