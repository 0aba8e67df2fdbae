"""The dictionary form of :class:`~monai_unet.transforms.elastic.RandElasticGrid`: one deformation drawn per sample
and applied to every key (image with its own mode, labels with ``nearest``), as MONAI pairs array and dict
transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from monai_unet.transforms.elastic import RandElasticGrid
from monai_unet.transforms.spatial_meta import image_spacing

__all__ = ["RandElasticGridd"]


class RandElasticGridd(RandomizableTransform, MapTransform):
    """Dictionary wrapper of :class:`RandElasticGrid`: one draw moves every key (image and label stay aligned).

    Keys with the same interpolation mode are resampled together in one ``grid_sample``: with an image and a label,
    the whole transform is two resampling passes.

    Args:
        keys: keys to deform; they must share one spatial shape.
        mode: interpolation per key (one value or one per key): ``"bilinear"`` for images, ``"nearest"`` for labels
            (the output holds only label values), ``"bicubic"`` (cubic, 2D and 3D).
        allow_missing_keys: skip keys absent from the data instead of raising ``KeyError``.
        prob, num_control_points, sigma, sigma_units, lock_borders, rotate_range, zoom_range, flip_axes,
        spatial_size, padding_mode, spatial_dims, min_jacobian: as in :class:`RandElasticGrid`.
            ``sigma_units="mm"`` takes the spacing of the first key, which must be a ``MetaTensor``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mode: str | Sequence[str] = ("bilinear", "nearest"),
        prob: float = 1.0,
        num_control_points: int | Sequence[int] = 3,
        sigma: float | Sequence[float] = 10.0,
        sigma_units: str = "voxels",
        lock_borders: bool = False,
        rotate_range: float | Sequence[float] | None = None,
        zoom_range: tuple[float, float] | None = None,
        flip_axes: Sequence[int] | None = None,
        spatial_size: Sequence[int] | None = None,
        padding_mode: str = "reflection",
        spatial_dims: int | None = None,
        min_jacobian: float | None = 0.1,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.mode = (mode,) * len(self.keys) if isinstance(mode, str) else tuple(mode)
        if len(self.mode) != len(self.keys):
            raise ValueError(f"mode needs one value or one per key ({len(self.keys)} keys), got {self.mode}")
        self.elastic = RandElasticGrid(
            prob=prob,
            num_control_points=num_control_points,
            sigma=sigma,
            sigma_units=sigma_units,
            lock_borders=lock_borders,
            rotate_range=rotate_range,
            zoom_range=zoom_range,
            flip_axes=flip_axes,
            spatial_size=spatial_size,
            padding_mode=padding_mode,
            spatial_dims=spatial_dims,
            min_jacobian=min_jacobian,
        )

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandElasticGridd:
        super().set_random_state(seed, state)
        self.elastic.set_random_state(seed, state)
        return self

    def randomize(  # type: ignore[override]
        self, spatial_shape: Sequence[int], batch_size: int = 1, spacing: Sequence[float] | None = None
    ) -> None:
        """Draw one deformation for all keys (see :meth:`RandElasticGrid.randomize`)."""
        self.elastic.randomize(spatial_shape, batch_size, spacing)
        self._do_transform = self.elastic.do_transform

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        present = [(key, mode) for key, mode in zip(self.keys, self.mode, strict=True) if key in d]
        if len(present) < len(self.keys) and not self.allow_missing_keys:
            missing = [key for key in self.keys if key not in d]
            raise KeyError(f"RandElasticGridd: keys {missing} are not in the data (keys present: {list(d)})")
        if not present:
            return d
        first = d[present[0][0]]
        spatial_dims, batched = self.elastic.layout(first)
        self.randomize(
            first.shape[-spatial_dims:], first.shape[0] if batched else 1, image_spacing(first, spatial_dims)
        )
        outputs = self.elastic.apply([d[key] for key, _ in present], [mode for _, mode in present])
        for (key, _), out in zip(present, outputs, strict=True):
            d[key] = out
        return d
