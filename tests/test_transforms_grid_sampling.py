"""Resampling on a precomputed grid: the folded reflection, the thread split and the nearest gather give exactly what
a plain ``grid_sample`` gives, and outputs keep the label dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monai_unet.transforms.grid_sampling import _parts, gather_nearest, reflect_into_range, sample_on_grid


def _grid(shape: tuple[int, ...], reach: float, seed: int = 3, batch: int = 1) -> torch.Tensor:
    """Random normalised coordinates (batch, *shape, d) up to ``reach`` × the image outside it, off half-voxel ties."""
    generator = torch.Generator().manual_seed(seed)
    size = torch.tensor(shape[::-1], dtype=torch.float64)
    voxels = torch.rand(batch, *shape, len(shape), generator=generator, dtype=torch.float64) * (1 + 2 * reach) - reach
    voxels = voxels * (size - 1)
    voxels = torch.where((voxels - voxels.floor() - 0.5).abs() < 1e-3, voxels + 0.1, voxels)
    return (2 * voxels / (size - 1) - 1).float()


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("reach", [0.6, 3.0])  # one reflection at most; several (the general, periodic fold)
@pytest.mark.parametrize("shape", [(9, 7), (6, 5, 4)])
def test_folded_grid_with_border_padding_equals_reflection_padding(shape, reach):
    image = torch.randn(1, 2, *shape, generator=torch.Generator().manual_seed(0))
    grid = _grid(shape, reach)
    assert grid.abs().max() > (3 if reach == 3.0 else 1)
    for mode in ("bilinear", "nearest"):
        expected = F.grid_sample(image, grid, mode=mode, padding_mode="reflection", align_corners=True)
        folded = reflect_into_range(grid.clone())
        assert folded.abs().max() <= 1
        got = F.grid_sample(image, folded, mode=mode, padding_mode="border", align_corners=True)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_bicubic_keeps_reflection_padding_for_its_taps():
    """Folding only the centres is not enough for cubic taps beyond the edge: they must be mirrored, not clamped."""
    image = torch.randn(1, 1, 9, 7, generator=torch.Generator().manual_seed(0))
    grid = _grid((9, 7), 0.6)
    expected = F.grid_sample(image, grid, mode="bicubic", padding_mode="reflection", align_corners=True)
    (got,) = sample_on_grid([image], grid.clone(), "bicubic", "reflection")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_folding_leaves_an_in_range_grid_untouched():
    grid = _grid((8, 8), 0.0)
    assert reflect_into_range(grid.clone()).equal(grid)


@pytest.mark.parametrize(
    ("shape", "channels", "mode"),
    [
        ((16, 12, 10), 1, "bilinear"),
        ((16, 12, 10), 3, "bilinear"),
        ((16, 9, 7), 2, "nearest"),
        ((20, 18), 2, "bicubic"),
    ],
)
def test_thread_split_equals_one_plain_call(two_threads, shape, channels, mode):
    image = torch.randn(1, channels, *shape, generator=torch.Generator().manual_seed(1))
    grid = _grid(shape, 0.3)
    assert _parts(grid, 1) == 2
    expected = F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)
    (got,) = sample_on_grid([image], grid.clone(), mode, "border")
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


@pytest.mark.parametrize("padding_mode", ["reflection", "border", "zeros"])
@pytest.mark.parametrize("shape", [(9, 7), (6, 5, 4)])
def test_nearest_gather_equals_grid_sample(padding_mode, shape):
    labels = torch.randint(0, 7, (2, 2, *shape), generator=torch.Generator().manual_seed(3))
    grid = _grid(shape, 1.1, batch=2)
    expected = F.grid_sample(labels.float(), grid, mode="nearest", padding_mode=padding_mode, align_corners=True)
    if padding_mode == "reflection":
        got = gather_nearest(labels, reflect_into_range(grid), "border")
    else:
        got = gather_nearest(labels, grid, padding_mode)
    assert got.dtype == labels.dtype
    assert torch.equal(got.float(), expected)


def test_an_odd_voxel_count_or_a_batch_is_not_split(two_threads):
    assert _parts(_grid((15, 9, 7), 0.0), 1) == 1
    assert _parts(_grid((16, 8), 0.0, batch=2), 2) == 1


def test_gather_refuses_reflection():
    with pytest.raises(ValueError, match="reflect_into_range"):
        gather_nearest(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, 2), "reflection")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int64, torch.float32, torch.bool])
def test_nearest_keeps_dtype_and_values_beyond_float32(dtype):
    shape = (12, 10, 8)
    if dtype == torch.int64:  # values float32 cannot hold: the gather must keep them
        values = torch.tensor([0, 2**40 + 1, 2**40 + 3])
    elif dtype == torch.bool:
        values = torch.tensor([False, True])
    else:
        values = torch.tensor([0, 3, 7])
    labels = values[torch.randint(0, len(values), (1, 1, *shape), generator=torch.Generator().manual_seed(2))]
    labels = labels.to(dtype)
    grid = _grid(shape, 0.4)
    (got,) = sample_on_grid([labels], grid.clone(), "nearest", "reflection")
    assert got.dtype == dtype
    assert set(got.unique().tolist()) <= set(values.to(dtype).tolist())
    reference = gather_nearest(labels, reflect_into_range(grid.clone()), "border")
    assert torch.equal(got, reference)


def test_linear_sampling_of_an_integer_image_is_floating_point():
    image = torch.arange(64, dtype=torch.int16).reshape(1, 1, 8, 8)
    grid = _grid((8, 8), 0.0)
    (got,) = sample_on_grid([image], grid, "bilinear", "border")
    assert got.dtype == torch.float32
    assert not torch.equal(got, got.round())


def _keys_weight(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel, a = -0.75 (torch's bicubic), at |distance|."""
    a, x = -0.75, np.abs(distance)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _reference_tricubic(image: np.ndarray, voxels: np.ndarray, padding_mode: str) -> np.ndarray:
    """Direct 64-tap cubic convolution, (C, D, H, W) at voxel positions (M, 3) in (z, y, x), per-tap padding."""
    shape = image.shape[1:]
    total = np.zeros((image.shape[0], len(voxels)))
    floors = np.floor(voxels).astype(int)
    for offsets in np.ndindex(4, 4, 4):
        taps = floors + np.asarray(offsets) - 1
        weight = np.prod(_keys_weight(voxels - taps), axis=1)
        index, inside = [], np.ones(len(voxels), dtype=bool)
        for axis, size in enumerate(shape):
            tap = taps[:, axis]
            if padding_mode == "reflection":
                period = 2 * max(size - 1, 1)
                tap = np.mod(tap, period)
                tap = np.where(tap > size - 1, period - tap, tap)
            else:
                inside &= (tap >= 0) & (tap < size)
                tap = np.clip(tap, 0, size - 1)
            index.append(tap)
        values = image[:, index[0], index[1], index[2]]
        if padding_mode == "zeros":
            values = values * inside
        total += weight * values
    return total


@pytest.mark.parametrize("padding_mode", ["reflection", "border", "zeros"])
def test_3d_cubic_equals_direct_cubic_convolution(padding_mode):
    shape = (7, 6, 5)
    image = torch.randn(1, 2, *shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grid = _grid(shape, 0.7).double()
    size = np.asarray(shape[::-1], dtype=np.float64)
    voxels = ((grid[0].numpy() + 1) / 2 * (size - 1))[..., ::-1].reshape(-1, 3)  # (z, y, x)
    expected = _reference_tricubic(image[0].numpy(), voxels, padding_mode).reshape(2, *shape)
    (got,) = sample_on_grid([image], grid, "bicubic", padding_mode)
    assert got.shape == (1, 2, *shape)
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-9)


def test_3d_cubic_of_a_volume_constant_along_z_is_the_2d_bicubic_of_its_slice():
    plane = torch.randn(1, 1, 12, 10, generator=torch.Generator().manual_seed(5))
    volume = plane.unsqueeze(2).expand(1, 1, 6, 12, 10).contiguous()
    grid3 = _grid((6, 12, 10), 0.3)
    (got,) = sample_on_grid([volume], grid3.clone(), "bicubic", "border")
    grid2 = grid3[..., :2].reshape(1, 6 * 12, 10, 2)
    expected = F.grid_sample(plane, grid2, mode="bicubic", padding_mode="border", align_corners=True)
    torch.testing.assert_close(got.reshape(expected.shape), expected, atol=1e-4, rtol=0)  # float32 rows
