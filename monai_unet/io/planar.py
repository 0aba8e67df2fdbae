"""Writing one 2D slice as a plain picture: class indices as 8-bit PNG, probabilities as float32 TIFF.

MONAI's ``SaveImage`` needs ITK (not SimpleITK) for TIFF; this writes through SimpleITK, atomically, and reads the
picture back before it replaces anything (SimpleITK may ignore a short write on a full disk). Pictures carry no
geometry: the grid only fixes their size.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.config import KeysCollection

from monai_unet.io.atomic import atomic_path
from monai_unet.io.errors import ImageInputError, OutputWriteError, last_line
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.save import SavePredictiond

__all__ = ["SavePlanard", "write_planar"]


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


class SavePlanard(SavePredictiond):
    """The 0.5 name of the 2D writer, kept so that bundles planned before 0.6 still run unchanged: ``.png`` writes a
    label map, ``.tif``/``.tiff`` float maps, as :class:`~monai_unet.io.SavePredictiond` does (new bundles use it)."""

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike = ".",
        output_postfix: str = "seg",
        output_ext: str = ".png",
        scale: float = 1.0,
        name_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        self.scale = scale  # 0.5's multiplier before writing (255: a 0/1 label map as black/white)
        floats = output_ext in (".tif", ".tiff")
        super().__init__(
            keys,
            output_dir,
            output_postfix,
            ".tif" if floats else output_ext,
            probabilities=floats,
            name_key=name_key,
            allow_missing_keys=allow_missing_keys,
        )

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        if self.scale == 1:
            return super().__call__(data)
        scaled = dict(data)
        for key in self.key_iterator(scaled):
            scaled[key] = scaled[key] * self.scale
        super().__call__(scaled)
        return dict(data)  # the prediction itself stays unscaled for the steps after
