"""Spatial preprocessing with an exact inverse, and the image/label geometry check.

:class:`OrientSpacingd` reorients to RAS and resamples to a target spacing with MONAI's ``Orientationd`` and
``Spacingd``, which record what they did in each ``MetaTensor``. ``monai.transforms.Invertd`` reads that record and
brings a prediction back to the source grid: the same spatial shape and the same affine (bit for bit for grids
aligned with the RAS axes up to flips and permutations; within float64 rounding, about 1e-15 mm, for oblique ones),
labels by nearest neighbour (``nearest_interp=True``)::

    pre = Compose([LoadImaged("image", reader=SimpleITKReader()), EnsureChannelFirstd("image"),
                   OrientSpacingd("image", pixdim=(1.5, 1.5, 2.0)), CTWindowd("image", "abdomen")])
    data = pre({"image": "ct/"})
    data["pred"] = model_output_as_label_map  # on the preprocessed grid, MetaTensor sharing the image's meta
    data = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(data)  # back on the source grid
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, Orientationd, Spacingd

from monai_unet.io.errors import ImageInputError

__all__ = ["CheckGeometryd", "OrientSpacingd"]

_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


class OrientSpacingd(MapTransform, InvertibleTransform):
    """Reorient to ``axcodes`` (RAS) and resample to ``pixdim`` mm: ``Orientationd`` then ``Spacingd``.

    One deterministic, invertible step: ``CacheDataset`` caches through it (a ``Compose`` counts as random there,
    so an earlier version of this class, a ``Compose``, made every training step resample the whole scan again:
    half of a BRATS step), and ``Invertd`` undoes both steps through :meth:`inverse`.

    Args:
        keys: images and labels to transform together (channel-first ``MetaTensor``, e.g. ``(1, H, W, D)``).
        pixdim: target voxel size in mm per spatial axis, after reorientation; ``None`` keeps the orientation
            only. A non-positive entry keeps that axis's spacing (MONAI's rule).
        mode: interpolation per key, or one for all; default ``"bilinear"`` for the first key (the image) and
            ``"nearest"`` for the others (labels).
        padding_mode: values outside the source when resampling (``"border"`` repeats the edge).
        axcodes: target orientation; ``"RAS"`` (MONAI's and NIfTI's convention) by default.
        allow_missing_keys: skip keys absent from the data (e.g. no label at inference).
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        pixdim: Sequence[float] | float | None = (1.0, 1.0, 1.0),
        mode: str | Sequence[str] | None = None,
        padding_mode: str | Sequence[str] = "border",
        axcodes: str = "RAS",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if mode is None:
            mode = ("bilinear",) + ("nearest",) * (len(self.keys) - 1)
        self.transforms: list[InvertibleTransform] = [
            Orientationd(keys, axcodes=axcodes, labels=_RAS_LABELS, allow_missing_keys=allow_missing_keys)
        ]
        if pixdim is not None:
            self.transforms.append(
                Spacingd(keys, pixdim, mode=mode, padding_mode=padding_mode, allow_missing_keys=allow_missing_keys)
            )

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        out = dict(data)
        for step in self.transforms:
            out = step(out)
        return out

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        out = dict(data)
        for step in reversed(self.transforms):
            out = step.inverse(out)
        return out


def _source_name(data: Mapping[Hashable, object], key: Hashable) -> str:
    value = data[key]
    name = value.meta.get("filename_or_obj") if isinstance(value, MetaTensor) else None
    return str(name) if name else f"<{key}>"


class CheckGeometryd(MapTransform):
    """Refuse image/label pairs that do not lie on the same grid, naming both files.

    Compares every key with the first: the spatial shape (the last ``len(affine) - 1`` axes) must be equal, and the
    affines (voxel → mm) equal within ``atol_mm`` per entry (mm of origin, mm per voxel of the axis vectors).
    Channels may differ (a 4-channel MR and its 1-channel label).

    Args:
        keys: the keys to compare, first one the reference (e.g. ``("image", "label")``).
        atol_mm: tolerance on affine entries in mm; default 1e-3 mm, far below any voxel size yet above the
            float32 rounding of NIfTI headers.

    Raises:
        ImageInputError: naming the first file, the other file, and the shapes or affines that differ.
    """

    def __init__(self, keys: KeysCollection = ("image", "label"), atol_mm: float = 1e-3) -> None:
        super().__init__(keys)
        self.atol_mm = atol_mm

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> Mapping[Hashable, torch.Tensor]:
        keys = list(self.key_iterator(dict(data)))
        first = data[keys[0]]
        if not isinstance(first, MetaTensor):
            raise TypeError(f"{keys[0]!r} is not a MetaTensor; load it with LoadImaged to keep its geometry")
        ndim = first.affine.shape[-1] - 1
        for key in keys[1:]:
            other = data[key]
            if not isinstance(other, MetaTensor):
                raise TypeError(f"{key!r} is not a MetaTensor; load it with LoadImaged to keep its geometry")
            problem = None
            if tuple(first.shape[-ndim:]) != tuple(other.shape[-ndim:]):
                problem = f"spatial shapes differ: {tuple(first.shape[-ndim:])} vs {tuple(other.shape[-ndim:])}"
            else:
                a, b = (np.asarray(t.affine.cpu(), dtype=np.float64) for t in (first, other))
                if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=self.atol_mm):
                    problem = (
                        f"affines differ by more than {self.atol_mm} mm: {a.round(4).tolist()} vs {b.round(4).tolist()}"
                    )
            if problem:
                raise ImageInputError(
                    _source_name(data, keys[0]),
                    f"{keys[0]} and {key} ({_source_name(data, key)}) are not on the same grid; {problem}",
                    "Resample the label onto the image grid, or pair the right files",
                )
        return data
