"""Tile positions, border mirroring and blending weights agree with MONAI and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers.utils import _get_scan_interval

from monai_unet.inferers.tiling import (
    gaussian_importance_map,
    mirror_indices,
    overlap_tile_axis,
    read_tile,
    sliding_window_axis,
)


@pytest.mark.parametrize("size", [1, 7, 16, 17, 45, 96, 97, 128, 200])
@pytest.mark.parametrize("roi", [16, 24, 96])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.7])
def test_sliding_window_positions_match_monai(size: int, roi: int, overlap: float) -> None:
    tiling = sliding_window_axis(size, roi, overlap)
    padded = max(size, roi)
    interval = _get_scan_interval((padded,), (roi,), 1, (overlap,))
    monai_starts = tuple(s[0].start for s in dense_patch_slices((padded,), (roi,), interval))
    assert tiling.starts == monai_starts
    assert tiling.canvas_size == padded
    assert tiling.image_offset == (padded - size) // 2  # MONAI pads half (rounded down) before


def test_overlap_tiles_abut_on_the_pooling_grid() -> None:
    # The paper's network: 572 -> 388, margin 92, pooling factor 16; 388 is not a multiple of 16.
    tiling = overlap_tile_axis(1000, 572, 388, 92, 16)
    assert tiling.kept_tile == 384
    assert tiling.starts == (0, 384, 768)
    assert all(s % 16 == 0 for s in tiling.starts)
    assert tiling.input_interval(384) == (384 - 92, 384 - 92 + 572)
    with pytest.raises(ValueError, match="larger roi_size"):
        overlap_tile_axis(100, 20, 4, 8, 8)


@pytest.mark.parametrize("size", [1, 2, 5, 9])
def test_mirror_indices_equal_numpy_reflect_for_any_extension(size: int) -> None:
    values = np.arange(size)
    for before, after in [(0, 0), (3, 2), (20, 31)]:
        expected = np.pad(values, (before, after), mode="reflect") if size > 1 else np.zeros(size + before + after)
        got = mirror_indices(-before, size + after, size).numpy()
        np.testing.assert_array_equal(values[got], expected)


def test_read_tile_reflect_and_constant() -> None:
    image = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    tile = read_tile(image, [(-3, 9), (2, 4)], "reflect")
    expected = np.pad(image.numpy()[:, :, :, 2:4], [(0, 0), (0, 0), (3, 4), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(tile.numpy(), expected)
    tile = read_tile(image, [(-1, 6), (4, 8)], "constant", cval=-7.0)
    expected = np.pad(image.numpy()[:, :, :, 4:], [(0, 0), (0, 0), (1, 1), (0, 2)], constant_values=-7.0)
    np.testing.assert_array_equal(tile.numpy(), expected)
    inside = read_tile(image, [(1, 3), (0, 6)], "reflect")
    assert torch.equal(inside, image[:, :, 1:3])


@pytest.mark.parametrize("shape", [(16, 24), (96, 96, 96), (7, 20, 33)])
def test_gaussian_importance_map_matches_monai(shape: tuple[int, ...]) -> None:
    ours = gaussian_importance_map(shape, 0.125)
    theirs = compute_importance_map(shape, mode="gaussian", sigma_scale=0.125)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
