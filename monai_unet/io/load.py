"""``LoadScan`` / ``LoadScand``: load an image file or DICOM series as ``LoadImage(d)`` would, without its copies.

``LoadImage(reader=SimpleITKReader(), image_only=True)`` returns the right MetaTensor but MONAI makes every array
C-contiguous in (x, y, z) order, while files store voxels x-fastest, i.e. (z, y, x) in C order. That reordering
copy reads the source with a stride of a whole slice and costs more than inflating a ``.nii.gz``. ``LoadScan``
calls :class:`~monai_unet.io.SimpleITKReader` itself and wraps its voxels without reordering: the MetaTensor is
indexed (x, y, z) like ``LoadImage``'s, with the same values, affine and meta, but its memory is the file's order
(a transposed, Fortran-ordered view; ``tensor.is_contiguous()`` is False). For a DICOM series the reader already
returns C-contiguous voxels, and only the copies are saved.

Where the copy goes: torch and MONAI transforms accept such tensors and give identical results (tested for
``EnsureChannelFirstd``, ``Orientationd``, ``Spacingd``, ``ScaleIntensityRanged`` and ``CTWindowd``), but many
MONAI transforms start with ``convert_to_tensor``, which makes a tensor contiguous: the first of them in a pipeline
pays the reordering instead, with torch's permuted copy, which is slower than the reader's blocked copy. So:

- ``LoadScan`` alone reads a 512×512×300 int16 ``.nii.gz`` 6.9–7.7× faster than ``LoadImage()`` (4.6–5.2×
  without the optional libdeflate), a gain that can be kept where the next steps only index into the volume or
  reduce it (crops, intensity statistics) and copy just what they keep;
- in front of transforms that make their input contiguous, load + preprocessing ends up about 2× faster than with
  ``LoadImaged()`` either way; ``LoadImaged(keys, reader=SimpleITKReader(dtype=np.float32))`` delivers a contiguous
  tensor at once (see ``benchmarks/results/io.md``).

Usage::

    LoadScand(["image", "label"])                      # like LoadImaged(keys, reader=SimpleITKReader())
    LoadScan(dtype=None)(path)                        # stored type kept: int16 CT as an int16 tensor
    LoadScan(SimpleITKReader(series_uid=uid))(folder) # reader options as usual
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import EnsureChannelFirst, MapTransform, Transform
from monai.transforms.io.array import switch_endianness
from monai.utils import ImageMetaKey, ensure_tuple
from monai.utils.type_conversion import UNSUPPORTED_TYPES
from numpy.typing import DTypeLike

from monai_unet.io.reader import SimpleITKReader

__all__ = ["LoadScan", "LoadScand"]


class LoadScan(Transform):
    """Load one image (file, DICOM folder or list of channel files) as a MetaTensor, like ``LoadImage`` with
    ``image_only=True``, but without reordering the voxels in memory.

    Args:
        reader: the reader and its options (DICOM series selection, checks, ``allow_4d``, ...); default
            ``SimpleITKReader()``. Its ``dtype`` option is overridden by ``dtype`` here.
        dtype: voxel type of the result: float32 by default, as ``LoadImage``; None keeps the stored type
            (int16 CT stays int16 and nothing is converted; uint16/uint32 become int32/int64 as in ``LoadImage``,
            torch having no arithmetic for them).
        ensure_channel_first: move or add the channel axis first, as ``LoadImage(ensure_channel_first=True)``.

    Output: a MetaTensor (x, y[, z]) (a channel axis as the reader gives it, or first with
    ``ensure_channel_first``), with ``affine`` (RAS) and the reader's meta plus ``filename_or_obj``.

    Raises:
        ImageInputError: every refusal of :class:`~monai_unet.io.SimpleITKReader` (missing, truncated or damaged
            files, awkward DICOM series, NaN voxels, channels on different grids).
    """

    def __init__(
        self, reader: SimpleITKReader | None = None, dtype: DTypeLike = np.float32, ensure_channel_first: bool = False
    ) -> None:
        self.reader = SimpleITKReader() if reader is None else reader
        self.dtype = dtype
        self.ensure_channel_first = ensure_channel_first

    def __call__(self, filename: Sequence[str | PathLike] | str | PathLike) -> MetaTensor:
        """Read ``filename`` (one path, or several files stacked as channels / one DICOM series)."""
        names = tuple(str(Path(n).expanduser()) for n in ensure_tuple(filename))
        array, meta = self.reader.get_data(self.reader.read(names, dtype=self.dtype), contiguous=False)
        if array.dtype in UNSUPPORTED_TYPES:
            array = array.astype(UNSUPPORTED_TYPES[array.dtype], order="K")
        meta = switch_endianness(meta, "<")
        meta[ImageMetaKey.FILENAME_OR_OBJ] = names[0]
        image = MetaTensor(torch.from_numpy(array), meta=meta)  # keeps the view's strides: no copy
        if self.ensure_channel_first:
            image = EnsureChannelFirst()(image, meta_dict=meta)
        return image


class LoadScand(MapTransform):
    """Dictionary wrapper of :class:`LoadScan`: replaces the path under each key by its MetaTensor.

    Args:
        keys: keys of the paths to load (e.g. ``["image", "label"]``).
        reader, dtype, ensure_channel_first: as :class:`LoadScan` (one loader serves every key).
        allow_missing_keys: skip keys absent from the data instead of raising ``KeyError``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: SimpleITKReader | None = None,
        dtype: DTypeLike = np.float32,
        ensure_channel_first: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadScan(reader, dtype, ensure_channel_first)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d
