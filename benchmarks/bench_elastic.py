"""Elastic deformation of an image and its label: our RandElasticGridd against MONAI and TorchIO, on CPU.

Every case deforms a float32 image and a uint8 label together (image linear, label nearest, reflection padding
where the library offers it), with displacements of comparable size: the table gives the measured RMS displacement
of each (read off a coordinate ramp, voxels 16 away from the border). Settings:

- ours: ``RandElasticGridd(keys, mode=("bilinear", "nearest"))``, defaults: 3 control points per axis, σ = 10 voxels,
  fold guard on.
- MONAI 3D: ``Rand3DElasticd(sigma_range=(10, 10), magnitude_range=(2600, 2600), prob=1, mode=("bilinear",
  "nearest"), padding_mode="reflection")``: full-resolution noise smoothed by a Gaussian of σ = 10 voxels, scaled to
  match our RMS displacement.
- MONAI 2D: ``Rand2DElasticd(spacing=(256, 256), magnitude_range=(10, 10), ...)``: the paper's recipe on its own
  terms (a coarse grid, offsets N(0, 10²) voxels, bicubic upsampling).
- TorchIO: ``RandomElasticDeformation(num_control_points=4, max_displacement=32, locked_borders=0)`` on a
  ``Subject(ScalarImage, LabelMap)``; 4 is TorchIO's smallest grid (cubic B-spline, SimpleITK resampling), and 32 mm
  (spacing 1 mm) gives the RMS displacement of ours (5.8 and 6.0 voxels over 20 draws each).
- floor: two bare ``torch.nn.functional.grid_sample`` calls (image linear, label nearest) on a precomputed grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
import torchio as tio
from monai.transforms import Rand2DElasticd, Rand3DElasticd

from benchmarks.harness import Comparison, compare, measure
from monai_unet.transforms import RandElasticGrid, RandElasticGridd

TITLE = "Elastic deformation, image + label: RandElasticGridd vs MONAI Rand2D/3DElasticd and TorchIO (CPU)"

KEYS = ["image", "label"]


def _sample(shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    noise = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    image = torch.as_tensor(ndi.gaussian_filter(noise, 4.0))[None]
    return {"image": image, "label": (image > 0).to(torch.uint8)}


def _rms_displacement(deform: Callable[[torch.Tensor], torch.Tensor], size: int, dims: int, draws: int) -> float:
    """RMS displacement along axis 0 (voxels), from a ramp image, 16 voxels away from the border."""
    ramp = torch.arange(size, dtype=torch.float32).reshape(1, size, *([1] * (dims - 1))).expand(1, *(size,) * dims)
    ramp = ramp.contiguous()
    inner = (slice(None), *(slice(16, size - 16),) * dims)
    values = [((deform(ramp) - ramp)[inner] ** 2).mean().sqrt().item() for _ in range(draws)]
    return float(np.mean(values))


def _floor(sample: dict[str, torch.Tensor]) -> Callable[[], None]:
    transform = RandElasticGrid()
    transform.set_random_state(0)
    transform.randomize(sample["image"].shape[1:])
    grid = transform.sampling_grid(sample["image"].shape[1:], normalized=True)
    image, label = sample["image"][None], sample["label"][None].float()

    def run() -> None:
        F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        F.grid_sample(label, grid, mode="nearest", padding_mode="reflection", align_corners=True)

    return run


def _torchio_transform() -> tio.RandomElasticDeformation:
    """TorchIO's smallest control grid; 32 mm (1 mm spacing) gives our RMS displacement."""
    return tio.RandomElasticDeformation(num_control_points=4, max_displacement=32, locked_borders=0)


def _torchio(sample: dict[str, torch.Tensor]) -> Callable[[], object]:
    transform = _torchio_transform()

    def run() -> object:
        subject = tio.Subject(image=tio.ScalarImage(tensor=sample["image"]), label=tio.LabelMap(tensor=sample["label"]))
        return transform(subject)

    return run


def _case(
    name: str,
    ours: RandElasticGridd,
    baseline_name: str,
    baseline: Callable[[dict], object],
    sample: dict[str, torch.Tensor],
    floor: Callable[[], None] | None,
    rms: tuple[float, float] | None,
    repeats: int,
) -> Comparison:
    ours.set_random_state(0)
    comparison = compare(
        name, ("RandElasticGridd", lambda: ours(sample)), (baseline_name, lambda: baseline(sample)), repeats=repeats
    )
    if floor is not None:
        floor_ms = 1000 * measure("floor", floor, repeats=repeats).median_s
        comparison.extra["floor: 2 grid_sample (ms)"] = f"{floor_ms:.1f}"
        comparison.extra["ours / floor"] = f"{1000 * comparison.ours.median_s / floor_ms:.2f}"
    if rms is not None:
        comparison.extra["RMS displacement ours / baseline (voxels)"] = f"{rms[0]:.1f} / {rms[1]:.1f}"
    return comparison


def run(quick: bool = False) -> list[Comparison]:
    warnings.filterwarnings("ignore", category=UserWarning)
    size3, crop3, size2 = (64, 48, 256) if quick else (128, 96, 512)
    repeats = 3 if quick else 7
    draws = 1 if quick else 12
    volume, slab = _sample((size3,) * 3), _sample((size2,) * 2)
    ours3 = RandElasticGridd(KEYS)
    monai3 = Rand3DElasticd(
        KEYS,
        sigma_range=(10, 10),
        magnitude_range=(2600, 2600),
        prob=1.0,
        mode=("bilinear", "nearest"),
        padding_mode="reflection",
    )
    torchio3 = _torchio(volume)
    rms_ours3 = _rms_displacement(lambda x: ours3({"image": x, "label": x})["image"], size3, 3, draws)
    rms_monai3 = _rms_displacement(lambda x: monai3({"image": x, "label": x})["image"], size3, 3, draws)
    tio_transform = _torchio_transform()
    rms_torchio3 = _rms_displacement(
        lambda x: tio_transform(tio.Subject(image=tio.ScalarImage(tensor=x))).image.data, size3, 3, draws
    )
    ours_crop = RandElasticGridd(KEYS, spatial_size=(crop3,) * 3)
    monai_crop = Rand3DElasticd(
        KEYS,
        sigma_range=(10, 10),
        magnitude_range=(2600, 2600),
        prob=1.0,
        spatial_size=(crop3,) * 3,
        mode=("bilinear", "nearest"),
        padding_mode="reflection",
    )
    ours2 = RandElasticGridd(KEYS)
    monai2 = Rand2DElasticd(
        KEYS,
        spacing=(size2 // 2, size2 // 2),
        magnitude_range=(10, 10),
        prob=1.0,
        mode=("bilinear", "nearest"),
        padding_mode="reflection",
    )
    rms_ours2 = _rms_displacement(lambda x: ours2({"image": x, "label": x})["image"], size2, 2, draws)
    rms_monai2 = _rms_displacement(lambda x: monai2({"image": x, "label": x})["image"], size2, 2, draws)
    n3, c3, n2 = f"{size3}³", f"{crop3}³", f"{size2}²"
    return [
        _case(
            f"3D 1×{n3} → {n3}",
            ours3,
            "MONAI Rand3DElasticd",
            monai3,
            volume,
            _floor(volume),
            (rms_ours3, rms_monai3),
            repeats,
        ),
        _case(
            f"3D 1×{n3} → {n3}",
            ours3,
            "TorchIO RandomElasticDeformation",
            lambda sample: torchio3(),
            volume,
            None,
            (rms_ours3, rms_torchio3),
            repeats,
        ),
        _case(f"3D 1×{n3} → {c3} crop", ours_crop, "MONAI Rand3DElasticd", monai_crop, volume, None, None, repeats),
        _case(
            f"2D 1×{n2} → {n2}",
            ours2,
            "MONAI Rand2DElasticd",
            monai2,
            slab,
            _floor(slab),
            (rms_ours2, rms_monai2),
            repeats,
        ),
    ]
