"""Resampling on a precomputed sampling grid, faster on CPU than a bare ``torch.nn.functional.grid_sample``.

Three facts about PyTorch's CPU ``grid_sample`` (torch 2.13, measured on 128³ with 2 threads, see
``benchmarks/results/elastic.md``) make a plain call slower than it needs to be:

- the 3D kernel runs its batch items in parallel, not its output voxels: one volume uses one thread. Splitting the
  grid into as many batch items as there are threads (the input broadcast to each, without a copy) uses them all;
- ``padding_mode="reflection"`` reflects every coordinate in the inner loop (about 2× the cost of ``"border"``);
  folding the grid into range once (a few elementwise passes) and sampling with ``"border"`` gives the same values;
- nearest-neighbour sampling of an integer label through a float copy is cheaper than an index gather, and exact
  for every dtype whose values float32 holds exactly; wider integers keep an index gather.

PyTorch has no cubic mode in 3D; :func:`sample_on_grid` adds one (the same cubic convolution as its 2D
``"bicubic"``, Keys with a = -0.75), built on the 2D kernel.

All functions use ``align_corners=True`` coordinates: -1 and 1 are the centres of the first and last voxel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gather_nearest", "reflect_into_range", "sample_on_grid"]

_CUBIC_A = -0.75  # torch's bicubic: Keys' cubic convolution kernel with a = -0.75
_ROW_PAD = 4  # rows added above and below every slice for 3D cubic sampling (taps reach 2 rows past the centre)

# Integer dtypes whose every value float32 represents exactly (|v| < 2**24): nearest sampling may go through float.
_FLOAT_EXACT = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16)


def reflect_into_range(grid: torch.Tensor) -> torch.Tensor:
    """Fold normalised coordinates into [-1, 1] by reflection about -1 and 1, in place.

    Sampling the folded grid with ``padding_mode="border"`` equals sampling the original with
    ``padding_mode="reflection"`` (``align_corners=True``: mirrored about the first and last voxel centres).

    Args:
        grid: ``(N, *spatial, d)`` floating point, any values.

    Returns:
        ``grid`` itself.
    """
    low, high = torch.aminmax(grid)
    if low >= -1 and high <= 1:
        return grid
    if low >= -3 and high <= 3:  # at most one reflection: x -> 1 - |2 - |x + 1||
        return grid.add_(1).abs_().sub_(2).abs_().neg_().add_(1)
    return grid.add_(1).remainder_(4).sub_(2).abs_().neg_().add_(1)  # period 4: x -> 1 - |((x + 1) mod 4) - 2|


def _parts(grid: torch.Tensor, batch: int) -> int:
    """How many batch items to split one sample's grid into: the CPU threads, if they divide the voxel count."""
    threads = torch.get_num_threads()
    if grid.device.type != "cpu" or batch != 1 or threads < 2:
        return 1
    points = grid[0, ..., 0].numel()
    return next(k for k in range(threads, 0, -1) if points % k == 0)


def _grid_sample_split(img: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    """``F.grid_sample(img, grid, align_corners=True)`` with one sample's grid spread over the CPU threads.

    Args:
        img: ``(N, C, *in_spatial)`` floating point.
        grid: ``(N, *out_spatial, d)``.

    Returns:
        ``(N, C, *out_spatial)``, equal to the plain call (each output voxel is computed by the same code).
    """
    parts = _parts(grid, img.shape[0])
    if parts == 1:
        return F.grid_sample(img, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    d = grid.shape[-1]
    points = grid[0, ..., 0].numel()
    pieces = grid.reshape(parts, points // parts, *([1] * (d - 1)), d)
    sampled = F.grid_sample(
        img.expand(parts, *img.shape[1:]), pieces, mode=mode, padding_mode=padding_mode, align_corners=True
    )  # (parts, C, points / parts, 1[, 1])
    return sampled.transpose(0, 1).reshape(1, img.shape[1], *grid.shape[1:-1])


def _cubic_weights(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cubic convolution weights of the taps at -1, 0, 1, 2 for a fractional position ``t`` in [0, 1)."""
    a = _CUBIC_A

    def near(x: torch.Tensor) -> torch.Tensor:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: torch.Tensor) -> torch.Tensor:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _padded_index(index: torch.Tensor, size: int, padding_mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Voxel indices (any integers) mapped into ``[0, size)`` by the padding mode; for zeros, also the in-range mask."""
    if padding_mode == "reflection":
        period = 2 * max(size - 1, 1)
        index = torch.remainder(index, period)
        return torch.where(index > size - 1, period - index, index), None
    if padding_mode == "border":
        return index.clamp(0, size - 1), None
    return index.clamp(0, size - 1), (index >= 0) & (index < size)


def _tricubic(img: torch.Tensor, grid: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """3D cubic convolution sampling, ``align_corners=True``, as four 2D bicubic passes over the stacked slices.

    The volume's slices are stacked into one tall 2D image, each with ``_ROW_PAD`` rows of padding above and below
    (mirrored, repeated or zero by ``padding_mode``) so that no cubic tap in y crosses into the next slice; torch's 2D
    bicubic kernel then interpolates in y and x, and the four taps along z are weighted here. The y centre is kept
    where the padding rows reproduce torch's per-tap padding (folded for reflection, clamped to [-1, H] for border,
    [-2, H + 1] for zeros). In float32 the stacked row coordinate is resolved to about 1e-7 × D (H + 8) rows
    (1e-3 voxel on 128³).

    Args:
        img: ``(N, C, D, H, W)`` floating point.
        grid: ``(N, *out_spatial, 3)`` normalised (x, y, z); folded in place for reflection.

    Returns:
        ``(N, C, *out_spatial)``.
    """
    n, channels, depth, height, _ = img.shape
    if padding_mode == "reflection":
        reflect_into_range(grid)
    rows = torch.arange(-_ROW_PAD, height + _ROW_PAD, device=img.device)
    if padding_mode == "zeros":
        padded = F.pad(img, (0, 0, _ROW_PAD, _ROW_PAD))
    else:
        padded = img.index_select(3, _padded_index(rows, height, padding_mode)[0])
    slab = height + 2 * _ROW_PAD
    stacked = padded.reshape(n, channels, depth * slab, img.shape[-1])
    x = grid[..., 0].reshape(n, -1, 1)
    y = (grid[..., 1].reshape(n, -1, 1) + 1) * (0.5 * (height - 1))
    if padding_mode == "border":
        y = y.clamp(-1, height)
    elif padding_mode == "zeros":
        y = y.clamp(-2, height + 1)
    z = (grid[..., 2].reshape(n, -1, 1) + 1) * (0.5 * (depth - 1))
    z_floor = z.floor()
    row_scale = 2.0 / (depth * slab - 1)
    out = None
    for k, weight in enumerate(_cubic_weights(z - z_floor)):
        tap, inside = _padded_index(z_floor.long() + (k - 1), depth, padding_mode)
        rows_k = (tap * slab + _ROW_PAD).to(grid.dtype) + y
        grid_k = torch.stack((x, rows_k * row_scale - 1), dim=-1)  # (N, M, 1, 2)
        if inside is not None:
            weight = weight * inside
        part = _grid_sample_split(stacked, grid_k, "bicubic", padding_mode) * weight.unsqueeze(1)
        out = part if out is None else out.add_(part)
    return out.reshape(n, channels, *grid.shape[1:-1])


def gather_nearest(img: torch.Tensor, grid: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """``grid_sample(img, grid, mode="nearest", align_corners=True)`` as an index gather, in ``img``'s own dtype.

    Args:
        img: ``(N, C, *in_spatial)``, any dtype (exact for int64 labels beyond float32's range).
        grid: ``(N, *out_spatial, d)`` normalised coordinates, components in reversed axis order (x = last axis).
        padding_mode: ``"border"`` or ``"zeros"`` (fold the grid with :func:`reflect_into_range` for reflection).

    Rounding is half to even, as in ``grid_sample``.
    """
    if padding_mode not in ("border", "zeros"):
        raise ValueError(
            f"gather_nearest takes padding_mode 'border' or 'zeros', got {padding_mode!r} "
            "(for reflection, fold the grid with reflect_into_range and use 'border')"
        )
    n, channels, *in_shape = img.shape
    d = len(in_shape)
    flat = torch.zeros(grid.shape[:-1], dtype=torch.int64, device=grid.device)
    outside = None
    for axis, size in enumerate(in_shape):
        index = torch.round((grid[..., d - 1 - axis] + 1) * (0.5 * (size - 1)))
        if padding_mode == "zeros":
            out_of_range = (index < 0) | (index > size - 1)
            outside = out_of_range if outside is None else outside | out_of_range
        flat = flat * size + index.clamp_(0, size - 1).to(torch.int64)
    source = img.reshape(n, channels, -1)
    gathered = torch.stack([source[b].index_select(1, flat[b].reshape(-1)) for b in range(n)])
    gathered = gathered.reshape(n, channels, *grid.shape[1:-1])
    if outside is not None:
        gathered = gathered.masked_fill(outside.unsqueeze(1), 0)
    return gathered


def sample_on_grid(images: list[torch.Tensor], grid: torch.Tensor, mode: str, padding_mode: str) -> list[torch.Tensor]:
    """Resample several tensors on one grid with one interpolation mode.

    Tensors are stacked along the channels and resampled in one call. Nearest-mode integer tensors that float32 cannot
    hold exactly (int32, int64) take :func:`gather_nearest` instead.

    Args:
        images: tensors ``(N, C_k, *in_spatial)`` on the grid's device.
        grid: ``(N, *out_spatial, d)`` in ``align_corners=True`` coordinates, float32 or float64. With
            ``padding_mode="reflection"`` and a linear or nearest mode it is folded into range in place.
        mode: ``"bilinear"`` (linear in 2D and 3D), ``"bicubic"`` (cubic convolution in 2D and 3D) or ``"nearest"``.
        padding_mode: ``"reflection"``, ``"border"`` or ``"zeros"``.

    Returns:
        ``(N, C_k, *out_spatial)`` per input, in order; linear and cubic outputs of integer inputs are in the grid's
        dtype.
    """
    if padding_mode == "reflection" and mode != "bicubic":  # cubic taps beyond the edge must still be mirrored
        reflect_into_range(grid)
        padding_mode = "border"
    outputs: list[torch.Tensor | None] = [None] * len(images)
    through_float = []
    for k, img in enumerate(images):
        if mode == "nearest" and not (img.is_floating_point() or img.dtype in _FLOAT_EXACT):
            outputs[k] = gather_nearest(img, grid, padding_mode)
        else:
            through_float.append(k)
    if through_float:
        parts_in = [images[k].to(grid.dtype) for k in through_float]
        stacked = parts_in[0] if len(parts_in) == 1 else torch.cat(parts_in, dim=1)
        if mode == "bicubic" and grid.shape[-1] == 3:
            sampled = _tricubic(stacked, grid, padding_mode)
        else:
            sampled = _grid_sample_split(stacked, grid, mode, padding_mode)
        parts = torch.split(sampled, [images[k].shape[1] for k in through_float], dim=1)
        for k, part in zip(through_float, parts, strict=True):
            keep_dtype = mode == "nearest" or images[k].is_floating_point()
            outputs[k] = part.to(images[k].dtype) if keep_dtype else part
    return [o for o in outputs if o is not None]
