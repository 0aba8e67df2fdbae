"""Where the tiles go: what the network's sizes allow, tile positions per axis, the blending weights, and reading a
tile with border extension.

Two tilings share one description (:class:`AxisTiling`, one per spatial axis):

- Overlap-tile (valid-padding networks, Ronneberger et al. 2015): output tiles abut; each input tile is the output
  tile grown by the network's margin on both sides; beyond the image the input is extended by mirroring.
- Sliding window (same-padding networks): input tile = output tile, tiles overlap by a fraction and are blended.
  Positions follow MONAI's ``sliding_window_inference`` exactly (``_get_scan_interval`` and ``dense_patch_slices``),
  so results can be compared voxel for voxel.

Coordinates are voxels. The *canvas* is the output grid the tiles are written to: the image itself, or for a
sliding window over an image smaller than the tile, the image padded (half before, half after) to the tile size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from monai_unet.networks.size_arithmetic import SizedNetwork, UNetGeometry

__all__ = [
    "AxisTiling",
    "axis_geometries",
    "gaussian_importance_map",
    "is_valid_unet",
    "mirror_indices",
    "nearest_valid_size",
    "overlap_tile_axis",
    "probe_shape",
    "read_tile",
    "sliding_window_axis",
]


def is_valid_unet(network: nn.Module) -> bool:
    """Whether the network loses a border (valid padding): it is then tiled overlap-tile, with mirrored borders."""
    return isinstance(network, SizedNetwork) and network.padding == "valid"


def axis_geometries(network: nn.Module, spatial_dims: int) -> tuple | None:
    """The network's per-axis ``UNetGeometry`` (:class:`~monai_unet.networks.SizedNetwork`), else ``None``."""
    if isinstance(network, SizedNetwork) and len(network.axis_geometries) == spatial_dims:
        return tuple(network.axis_geometries)
    return None


def nearest_valid_size(geometry: UNetGeometry, size: int) -> int:
    """The valid size (voxels) nearest ``size`` along an axis with this ``UNetGeometry`` (ties go up)."""
    above = geometry.valid_size_at_least(size)
    below = geometry.valid_size_at_most(size)
    return below if below is not None and size - below < above - size else above


def probe_shape(network: nn.Module, tile: tuple[int, ...]) -> tuple[int, ...]:
    """A small input shape the network accepts, for the fast path's one observation pass.

    A :class:`~monai_unet.networks.SizedNetwork`: its smallest valid input. Other networks: per axis the largest
    power of two dividing the tile size (at least 16 voxels, else the tile size), which keeps every stride-2 level
    integral as the tile itself does.
    """
    if isinstance(network, SizedNetwork):
        return tuple(min(p, t) for p, t in zip(network.valid_input_shape(1), tile, strict=True))
    return tuple(t & -t if (t & -t) >= 16 else t for t in tile)


@dataclass(frozen=True)
class AxisTiling:
    """Tiles along one spatial axis.

    Args:
        image_size: image size along the axis (voxels).
        canvas_size: size of the output canvas (voxels), ``>= image_size``.
        image_offset: where the image starts on the canvas (voxels; > 0 only when a small image is padded).
        input_tile: input tile size the network receives (voxels).
        kept_tile: how many output voxels of each tile are written to the canvas (voxels).
        margin: voxels the network loses per side (0 for same padding).
        starts: canvas position of the first kept output voxel of every tile, ascending.
    """

    image_size: int
    canvas_size: int
    image_offset: int
    input_tile: int
    kept_tile: int
    margin: int
    starts: tuple[int, ...]

    def input_interval(self, start: int) -> tuple[int, int]:
        """The input voxels ``[begin, end)`` in image coordinates (may reach beyond the image) for a tile start."""
        begin = start - self.margin - self.image_offset
        return begin, begin + self.input_tile


def sliding_window_axis(image_size: int, roi: int, overlap: float) -> AxisTiling:
    """Sliding-window positions along one axis, identical to MONAI's ``sliding_window_inference``.

    The image is padded to ``roi`` when smaller (``(roi - size) // 2`` before). The step is ``int(roi * (1 -
    overlap))`` (at least 1; the whole tile when the tile equals the padded image); tiles are placed at multiples of
    the step until one reaches the end, and the last one is shifted back to end at the border.

    Args:
        image_size: image size along the axis (voxels).
        roi: tile size (voxels).
        overlap: fraction of the tile shared with the next tile, in ``[0, 1)``.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
    canvas = max(image_size, roi)
    step = roi if roi == canvas else max(int(roi * (1 - overlap)), 1)
    count = 1
    while (count - 1) * step + roi < canvas:
        count += 1
    starts = tuple(min(i * step, canvas - roi) for i in range(count))
    return AxisTiling(image_size, canvas, (canvas - image_size) // 2, roi, roi, 0, starts)


def overlap_tile_axis(image_size: int, input_tile: int, output_tile: int, margin: int, divisor: int) -> AxisTiling:
    """Overlap-tile positions along one axis for a valid-padding network.

    Output tiles abut. Their step is the output tile rounded down to a multiple of the network's pooling
    ``divisor``, so every input tile starts on the pooling grid of the whole (mirror-extended) image and the tiled
    result equals one whole-image forward; the few output voxels of each tile beyond the step are not used.

    Args:
        image_size: image size along the axis (voxels).
        input_tile: a valid input tile size (voxels).
        output_tile: the network's output size for ``input_tile`` (voxels).
        margin: voxels lost per side, ``(input_tile - output_tile) / 2``.
        divisor: total down-sampling factor of the network.
    """
    step = output_tile - output_tile % divisor
    if step < 1:
        raise ValueError(
            f"the output tile ({output_tile} voxels for input tile {input_tile}) is smaller than the network's "
            f"pooling step {divisor}; choose a larger roi_size."
        )
    starts = tuple(range(0, image_size, step))
    return AxisTiling(image_size, image_size, 0, input_tile, step, margin, starts)


def mirror_indices(begin: int, end: int, size: int, device: torch.device | None = None) -> torch.Tensor:
    """Indices ``begin..end-1`` folded into ``[0, size)`` by mirroring about the border voxels (no edge repeat).

    Repeated mirroring handles extensions longer than the image (period ``2 * (size - 1)``); this is numpy's and
    PyTorch's ``"reflect"`` mode extended to any length.
    """
    idx = torch.arange(begin, end, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= size, period - idx, idx)


def read_tile(
    image: torch.Tensor, intervals: list[tuple[int, int]], padding_mode: str, cval: float = 0.0
) -> torch.Tensor:
    """Read ``image[..., begin:end, ...]`` for every spatial axis, extending beyond the image border.

    Args:
        image: ``(N, C, *spatial)``.
        intervals: ``(begin, end)`` per spatial axis in voxels; may reach below 0 or beyond the size.
        padding_mode: ``"reflect"`` (mirror, any extension length) or ``"constant"`` (filled with ``cval``).
        cval: fill value for ``"constant"``.

    Returns:
        ``(N, C, *[end - begin])``.
    """
    spatial = image.shape[2:]
    inside = tuple(slice(max(b, 0), min(e, s)) for (b, e), s in zip(intervals, spatial, strict=True))
    if all(b >= 0 and e <= s for (b, e), s in zip(intervals, spatial, strict=True)):
        return image[(slice(None), slice(None), *inside)]
    if padding_mode == "constant":
        pad: list[int] = []
        for (b, e), s in reversed(list(zip(intervals, spatial, strict=True))):
            pad += [max(-b, 0), max(e - s, 0)]
        return F.pad(image[(slice(None), slice(None), *inside)], pad, mode="constant", value=cval)
    if padding_mode != "reflect":
        raise ValueError(f"padding_mode must be 'reflect' or 'constant', got {padding_mode!r}.")
    index = [
        inside[a] if b >= 0 and e <= s else slice(None)
        for a, ((b, e), s) in enumerate(zip(intervals, spatial, strict=True))
    ]
    tile = image[(slice(None), slice(None), *index)]
    for a, ((b, e), s) in enumerate(zip(intervals, spatial, strict=True)):
        if b < 0 or e > s:
            tile = tile.index_select(a + 2, mirror_indices(b, e, s, device=image.device))
    return tile


@lru_cache(maxsize=8)
def _gaussian_cached(shape: tuple[int, ...], sigma_scale: tuple[float, ...], device: str) -> torch.Tensor:
    weights = torch.ones((), dtype=torch.float64)
    for size, scale in zip(shape, sigma_scale, strict=True):
        sigma = scale * size
        x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
        profile = torch.exp(-(x**2) / (2.0 * sigma**2))
        weights = weights.unsqueeze(-1) * profile
    # The corners of a 3D Gaussian are ~1e-11: floor the weights (as MONAI does) so that every voxel of the
    # tile keeps a usable weight where only one tile covers it.
    floor = max(float(weights.min()), 1e-3)
    return weights.clamp_min(floor).to(torch.float32).to(device)


def gaussian_importance_map(
    shape: tuple[int, ...], sigma_scale: float | tuple[float, ...] = 0.125, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Gaussian blending weights for a tile (cached; do not modify the result in place).

    Args:
        shape: tile shape (voxels).
        sigma_scale: standard deviation as a fraction of the tile size, per axis or one for all.
        device: where the weights live.

    Returns:
        ``(*shape)`` float32, 1 at the centre, floored at ``max(min, 1e-3)`` as in MONAI's
        ``compute_importance_map``.
    """
    scales = (float(sigma_scale),) * len(shape) if isinstance(sigma_scale, (int, float)) else tuple(sigma_scale)
    if len(scales) != len(shape) or min(scales) <= 0 or not all(math.isfinite(s) for s in scales):
        raise ValueError(f"sigma_scale must be positive, one per axis of {shape}, got {sigma_scale}.")
    return _gaussian_cached(tuple(int(s) for s in shape), scales, str(torch.device(device)))
