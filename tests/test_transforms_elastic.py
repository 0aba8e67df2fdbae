"""The paper's elastic deformation: identity at σ = 0, interpolation through the control points, one draw for image
and label, label values kept, reproducible draws, no folding at the defaults, geometry of MetaTensors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_unet.transforms import RandElasticGrid, RandElasticGridd
from monai_unet.transforms.spline_field import interpolation_basis


def _smooth_image(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A smooth random image (Gaussian-filtered noise), shape (1, *shape), float32, roughly zero mean."""
    noise = np.random.default_rng(seed).standard_normal(shape)
    return torch.as_tensor(ndi.gaussian_filter(noise, 3.0) * 10, dtype=torch.float32)[None]


def _jacobian_determinant(points: torch.Tensor) -> torch.Tensor:
    """Determinant of the forward-difference Jacobian of a voxel map (*shape, d) -> (*shape - 1)."""
    d = points.shape[-1]
    inner = tuple(slice(0, -1) for _ in range(d))
    columns = []
    for axis in range(d):
        ahead = list(inner)
        ahead[axis] = slice(1, None)
        columns.append(points[tuple(ahead)] - points[inner])  # column a: d q / d p_a, components last
    if d == 2:
        (a, c), (b, e) = columns[0].unbind(-1), columns[1].unbind(-1)
        return a * e - b * c
    (a, d_, g), (b, e, h), (c, f, i) = (column.unbind(-1) for column in columns)
    return a * (e * i - f * h) - b * (d_ * i - f * g) + c * (d_ * h - e * g)


def test_basis_is_the_interpolating_cubic_bspline_with_mirror_boundaries():
    rng = np.random.default_rng(0)
    for n, in_size, out_size, offset in ((3, 129, 129, 0), (3, 128, 96, 16), (5, 40, 60, -10), (2, 17, 17, 0)):
        basis = interpolation_basis(in_size, out_size, offset, n)
        values = rng.standard_normal(n)
        positions = (np.arange(out_size) + offset) * (n - 1) / (in_size - 1)
        reference = ndi.map_coordinates(values, [positions], order=3, mode="mirror")
        np.testing.assert_allclose(basis @ values, reference, atol=1e-12)
        np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=1e-12)
    # Through the control values: rows at the control points (0, 64, 128 of 129 voxels) are unit vectors.
    np.testing.assert_allclose(interpolation_basis(129, 129, 0, 3)[[0, 64, 128]], np.eye(3), atol=1e-12)


@pytest.mark.parametrize("shape", [(40, 50), (20, 24, 28)])
def test_sigma_zero_is_exactly_the_identity(shape):
    image = _smooth_image(shape)
    label = (image > 0).to(torch.uint8)
    transform = RandElasticGridd(keys=["image", "label"], sigma=0.0)
    out = transform({"image": MetaTensor(image), "label": label})
    assert torch.equal(out["image"].as_tensor(), image)
    assert torch.equal(out["label"], label) and out["label"].dtype == torch.uint8
    assert isinstance(out["image"], MetaTensor)


@pytest.mark.parametrize("size", [(65, 65), (33, 33, 33)])
def test_dense_field_equals_control_displacements_at_control_points(size):
    transform = RandElasticGrid(sigma=3.0, padding_mode="border")
    transform.set_random_state(7)
    d = len(size)
    transform.randomize(size)
    grid = transform.sampling_grid(size)[0].double()
    displacement = transform.control_displacements()[0]  # (d, 3, 3[, 3]) voxels
    spacing = (size[0] - 1) // 2
    for index in np.ndindex(*(3,) * d):
        position = np.array(index) * spacing
        np.testing.assert_allclose(
            grid[tuple(position)].numpy() - position, displacement[(slice(None), *index)], atol=1e-4
        )
    # The same through an image: a ramp along each axis, linearly interpolated, reads back the input coordinate.
    for axis in range(d):
        ramp = torch.arange(size[axis], dtype=torch.float64).reshape([-1 if a == axis else 1 for a in range(d)])
        image = ramp.expand(size)[None].contiguous()
        out = transform(image, randomize=False)[0]
        for index in np.ndindex(*(3,) * d):
            position = np.array(index) * spacing
            target = position[axis] + displacement[(axis, *index)]
            if 0 <= target <= size[axis] - 1:  # inside the image (outside, the border padding clamps)
                assert abs(out[tuple(position)].item() - target) < 1e-6


def test_label_thresholded_from_the_image_stays_aligned():
    image = _smooth_image((96, 96), seed=1)
    label = (image > 0).to(torch.int64)
    # Nearest neighbour on both: the label is exactly the threshold of the deformed image.
    both_nearest = RandElasticGridd(keys=["image", "label"], mode="nearest", rotate_range=0.3, zoom_range=(0.9, 1.1))
    both_nearest.set_random_state(3)
    out = both_nearest({"image": image, "label": label})
    assert torch.equal(out["label"], (out["image"] > 0).to(torch.int64))
    assert not torch.equal(out["label"], label)
    # Linear image, nearest label: they disagree only on the label's boundary (sub-voxel rounding); a second draw
    # disagrees inside the objects too.
    transform = RandElasticGridd(keys=["image", "label"], mode=("bilinear", "nearest"), sigma=10.0)
    transform.set_random_state(4)
    out = transform({"image": image, "label": label})
    thresholded = (out["image"] > 0).to(torch.int64)
    boundary = _boundary(out["label"])
    assert not ((out["label"] != thresholded) & ~boundary).any()
    other_draw = transform({"image": image, "label": label})["label"]
    assert ((other_draw != thresholded) & ~boundary).float().mean() > 0.02


def _boundary(label: torch.Tensor) -> torch.Tensor:
    """Voxels of a binary label (1, H, W) whose 3×3 neighbourhood holds both values."""
    values = label.float()[None]
    high = torch.nn.functional.max_pool2d(values, 3, stride=1, padding=1)
    low = -torch.nn.functional.max_pool2d(-values, 3, stride=1, padding=1)
    return (high != low)[0]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float32])
def test_labels_contain_only_input_label_values(dtype):
    rng = np.random.default_rng(5)
    label = torch.as_tensor(rng.choice([0, 3, 7], size=(1, 24, 24, 24)), dtype=dtype)
    transform = RandElasticGrid(mode="nearest", rotate_range=0.5, zoom_range=(0.8, 1.2), flip_axes=(0, 2))
    transform.set_random_state(0)
    out = transform(label)
    assert out.dtype == dtype
    assert set(out.unique().tolist()) <= {0, 3, 7}
    assert not torch.equal(out, label)


def test_same_seed_same_output_and_different_seeds_differ():
    image = _smooth_image((30, 30, 30))
    outputs = []
    for seed in (11, 11, 12):
        transform = RandElasticGrid(rotate_range=0.2)
        transform.set_random_state(seed)
        outputs.append(transform(image))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("shape", [(128, 128), (128, 128, 128)])
def test_no_folding_at_default_settings_over_100_draws(shape):
    transform = RandElasticGrid()
    transform.set_random_state(2015)
    smallest = []
    for _ in range(100):
        transform.randomize(shape)
        smallest.append(_jacobian_determinant(transform.sampling_grid(shape)[0]).min().item())
    assert min(smallest) > 0, f"folding: smallest Jacobian determinant {min(smallest):.3f}"


@pytest.mark.parametrize(("shape", "sigma"), [((64, 64), 10.0), ((32, 32, 32), 6.0)])
def test_fold_guard_holds_with_flips(shape, sigma):
    """A flip makes det A negative: the guard must bound det J / det A (not det J), or flipped draws go unchecked.

    At these settings most raw draws fold (28 of 48 flipped draws in 2D, all flipped ones in 3D, before the fix)."""
    transform = RandElasticGrid(sigma=sigma, flip_axes=(0,))
    transform.set_random_state(0)
    flipped = 0
    for _ in range(100):
        transform.randomize(shape)
        sign = float(np.sign(np.linalg.det(transform._linear[0])))
        flipped += sign < 0
        relative = sign * _jacobian_determinant(transform.sampling_grid(shape)[0])
        assert relative.min().item() > 0, "a draw folds"
    assert flipped > 30


def test_large_sigma_on_a_small_image_can_fold():
    """The documented failure mode: displacements comparable to the control spacing fold the map."""
    transform = RandElasticGrid(sigma=10.0, num_control_points=5, min_jacobian=None)
    transform.set_random_state(0)
    folds = 0
    for _ in range(20):
        transform.randomize((32, 32))
        folds += int(_jacobian_determinant(transform.sampling_grid((32, 32))[0]).min().item() <= 0)
    assert folds > 0


def test_crop_and_metatensor_affine_follow_the_affine_part():
    affine = torch.tensor([[0.0, 0, 2, -10], [0, 1.5, 0, 5], [1, 0, 0, 3], [0, 0, 0, 1]], dtype=torch.float64)
    index = torch.arange(20 * 22 * 24, dtype=torch.int64).reshape(1, 20, 22, 24)
    image = MetaTensor(index, affine=affine)
    # σ = 0 with a crop: a centred slice, and the affine moves by the crop offset.
    cropped = RandElasticGrid(sigma=0.0, spatial_size=(10, 12, 24), mode="nearest")(image)
    assert torch.equal(cropped.as_tensor(), index[:, 5:15, 5:17, :])
    np.testing.assert_allclose(cropped.affine.numpy(), (affine @ _translation((5, 5, 0))).numpy())
    # Flips, zoom and rotation: world position of each output voxel = world position of where it reads from.
    transform = RandElasticGrid(
        sigma=0.0, rotate_range=0.4, zoom_range=(0.8, 1.2), flip_axes=(1,), spatial_size=(16, 16, 16), mode="nearest"
    )
    transform.set_random_state(1)
    out = transform(image)
    reads = transform.sampling_grid(index.shape[1:])[0].double()
    for p in [(0, 0, 0), (15, 3, 7), (8, 15, 15)]:
        world_out = out.affine @ torch.tensor([*p, 1.0], dtype=torch.float64)
        world_in = affine @ torch.cat([reads[p], torch.ones(1, dtype=torch.float64)])
        np.testing.assert_allclose(world_out.numpy(), world_in.numpy(), atol=1e-6)


def _translation(offset: tuple[int, ...]) -> torch.Tensor:
    step = torch.eye(len(offset) + 1, dtype=torch.float64)
    step[: len(offset), -1] = torch.tensor(offset, dtype=torch.float64)
    return step


def test_sigma_in_mm_scales_by_the_spacing():
    image = MetaTensor(torch.zeros(1, 40, 40), affine=torch.diag(torch.tensor([2.0, 0.5, 1.0, 1.0])))
    in_voxels = RandElasticGrid(sigma=4.0, min_jacobian=None)
    in_mm = RandElasticGrid(sigma=4.0, sigma_units="mm", min_jacobian=None)
    for transform in (in_voxels, in_mm):
        transform.set_random_state(9)
        transform(image)
    voxels, mm = in_voxels.control_displacements(), in_mm.control_displacements()
    np.testing.assert_allclose(mm[:, 0], voxels[:, 0] / 2.0)
    np.testing.assert_allclose(mm[:, 1], voxels[:, 1] * 2.0)
    with pytest.raises(ValueError, match="spacing"):
        RandElasticGrid(sigma_units="mm")(torch.zeros(1, 8, 8))


def test_batch_draws_per_sample_and_prob():
    image = _smooth_image((32, 32)).expand(4, 1, 32, 32).contiguous()
    transform = RandElasticGrid(spatial_dims=2)
    transform.set_random_state(0)
    out = transform(image)
    assert out.shape == (4, 1, 32, 32)
    assert not torch.allclose(out[0], out[1])
    never = RandElasticGrid(spatial_dims=2, prob=0.0, spatial_size=(16, 16))
    assert torch.equal(never(image), image[..., 8:24, 8:24])


def test_compose_and_bundle_config():
    config = {
        "augment": {
            "_target_": "Compose",
            "transforms": [
                {
                    "_target_": "monai_unet.transforms.RandElasticGridd",
                    "keys": ["image", "label"],
                    "mode": ["bilinear", "nearest"],
                    "spatial_size": [24, 24],
                    "rotate_range": 0.2,
                }
            ],
        }
    }
    augment = ConfigParser(config).get_parsed_content("augment")
    assert isinstance(augment, Compose)
    image = _smooth_image((32, 32))
    results = []
    for _ in range(2):
        augment.set_random_state(seed=5)
        results.append(augment({"image": image, "label": (image > 0).to(torch.uint8)}))
    assert results[0]["image"].shape == (1, 24, 24)
    assert torch.equal(results[0]["image"], results[1]["image"])
    assert torch.equal(results[0]["label"], results[1]["label"])


def test_3d_cubic_and_linear_agree_on_a_smooth_image():
    image = MetaTensor(_smooth_image((24, 28, 20)), affine=torch.diag(torch.tensor([0.8, 0.8, 2.0, 1.0])))
    outputs = {}
    for mode in ("bilinear", "bicubic"):
        transform = RandElasticGrid(mode=mode, rotate_range=0.2)
        transform.set_random_state(7)
        outputs[mode] = transform(image)
    cubic, linear = outputs["bicubic"], outputs["bilinear"]
    assert isinstance(cubic, MetaTensor) and torch.equal(cubic.affine, linear.affine)
    difference = (cubic - linear).abs().mean().item()
    assert 0 < difference < 0.05 * image.std().item()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        RandElasticGrid(mode="trilinear")
    with pytest.raises(ValueError, match="one spatial shape"):
        RandElasticGridd(keys=["image", "label"])({"image": torch.zeros(1, 8, 8), "label": torch.zeros(1, 8, 9)})
    with pytest.raises(KeyError, match="label"):
        RandElasticGridd(keys=["image", "label"])({"image": torch.zeros(1, 8, 8)})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu():
    image = _smooth_image((40, 40, 40))
    outputs = []
    for device in ("cpu", "cuda"):
        transform = RandElasticGrid(rotate_range=0.2)
        transform.set_random_state(3)
        outputs.append(transform(image.to(device)).cpu())
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)
