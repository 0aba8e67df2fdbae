"""Saving 2D results as plain pictures: label maps as PNG, probabilities as float32 TIFF (EM, microscopy).

MONAI's ``SaveImaged`` needs ITK (not SimpleITK) for TIFF; these write through SimpleITK, atomically, next to the
naming convention of :class:`~monai_unet.io.SaveSegmentationd`: ``<output_dir>/<source name>_<postfix><ext>``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_unet.io.atomic import atomic_path
from monai_unet.io.errors import ImageInputError, OutputWriteError, last_line
from monai_unet.io.naming import output_name

__all__ = ["SavePlanard"]

_FORMATS = {".png": np.uint8, ".tif": np.float32, ".tiff": np.float32}


class SavePlanard(MapTransform):
    """Write 2D maps ``(1, H, W)`` (MONAI's (x, y) index order) as PNG (uint8) or TIFF (float32).

    Args:
        keys: keys to write.
        output_dir: folder (created if missing).
        output_postfix: appended to the source name after an underscore (``"seg"``, ``"prob"``).
        output_ext: ``".png"`` (values rounded to uint8 after ``scale``) or ``".tif"``/``".tiff"`` (float32).
        scale: multiplier applied before writing (e.g. 255 to see a 0/1 label map as black/white); 1 keeps values.
        meta_key: key whose ``meta`` names the output (default: the written key's own meta).
        name_key: data key holding the case name to write under (e.g. ``"case"`` from
            :func:`~monai_unet.io.datalist.list_inputs`); takes precedence over the meta's source name.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike = ".",
        output_postfix: str = "seg",
        output_ext: str = ".png",
        scale: float = 1.0,
        meta_key: str | None = None,
        name_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if output_ext not in _FORMATS:
            raise ValueError(f"output_ext must be one of {sorted(_FORMATS)}, got {output_ext!r}")
        self.output_dir = Path(output_dir)
        self.output_postfix = output_postfix
        self.output_ext = output_ext
        self.scale = scale
        self.meta_key = meta_key
        self.name_key = name_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            array = d[key].detach().cpu().numpy() if isinstance(d[key], torch.Tensor) else np.asarray(d[key])
            if array.ndim != 3 or array.shape[0] != 1:
                raise ValueError(f"{key}: expected a 2D map of shape (1, H, W), got {array.shape}")
            values = array[0].T * self.scale  # (x, y) → rows = y, columns = x
            dtype = _FORMATS[self.output_ext]
            if dtype == np.uint8:
                values = np.clip(np.rint(values), 0, 255)
            meta = getattr(d[self.meta_key or key], "meta", {})
            name = str(d[self.name_key]) if self.name_key is not None and self.name_key in d else output_name(meta)
            target = self.output_dir / f"{name}_{self.output_postfix}{self.output_ext}"
            pixels = np.ascontiguousarray(values.astype(dtype))
            with atomic_path(target, suffix=self.output_ext, verify=_reads_back(pixels)) as tmp:
                try:
                    sitk.WriteImage(sitk.GetImageFromArray(pixels), str(tmp))
                except RuntimeError as error:  # ITK's write errors carry no errno
                    raise OutputWriteError(target, f"SimpleITK could not write it ({last_line(str(error))})") from None
        return d


def _reads_back(pixels: np.ndarray):
    """A check for :func:`atomic_path`: the written picture reads back with exactly these pixels (SimpleITK may
    ignore a short write on a full disk)."""

    def verify(path: Path) -> None:
        try:
            back = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        except RuntimeError as error:
            raise ImageInputError(path, f"unreadable ({last_line(str(error))})") from None
        if back.shape != pixels.shape or not np.array_equal(back, pixels):
            raise ImageInputError(path, "its pixels differ from those written")

    return verify
