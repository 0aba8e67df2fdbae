"""Preprocessing: CT windows, MR foreground z-score, RAS + spacing with exact inverse, image/label geometry check."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged

from monai_unet.io import ImageInputError, SimpleITKReader
from monai_unet.transforms import (
    CT_WINDOWS,
    CheckGeometryd,
    CTWindow,
    CTWindowd,
    ForegroundZScore,
    ForegroundZScored,
    OrientSpacingd,
)

# --- CT windows ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(CT_WINDOWS))
def test_ct_window_maps_the_window_edges_to_0_and_1_and_clips(preset: str) -> None:
    level, width = CT_WINDOWS[preset]
    hu = torch.tensor([[-3000.0, level - width / 2, level - width / 4, level, level + width / 2, 4000.0]])
    out = CTWindow(preset)(hu)
    np.testing.assert_allclose(out.numpy(), [[0.0, 0.0, 0.25, 0.5, 1.0, 1.0]], atol=1e-6)


def test_ct_window_values_and_arguments() -> None:
    assert CT_WINDOWS["brain"] == (40.0, 80.0) and CT_WINDOWS["lung"] == (-600.0, 1500.0)
    assert CT_WINDOWS["abdomen"] == (50.0, 400.0) and CT_WINDOWS["bone"] == (400.0, 1800.0)
    np.testing.assert_allclose(CTWindow(level=0, width=200)(torch.tensor([50.0])).numpy(), [0.75])
    for kwargs, message in [
        ({"preset": "kidney"}, "unknown CT window"),
        ({"preset": "lung", "level": 1}, "not both"),
        ({"level": 1}, "both level and width"),
        ({"level": 1, "width": 0}, "> 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            CTWindow(**kwargs)


def test_ct_windowd_keeps_meta_and_leaves_labels_alone() -> None:
    image = MetaTensor(torch.tensor([[[-1000.0, 50.0]]]), affine=torch.eye(3) * 2, meta={"filename_or_obj": "ct.nii"})
    label = MetaTensor(torch.tensor([[[0.0, 1.0]]]), affine=torch.eye(3) * 2)
    out = CTWindowd("image", "abdomen")({"image": image, "label": label})
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "ct.nii"
    np.testing.assert_allclose(out["image"].numpy(), [[[0.0, 0.5]]])
    assert out["label"] is label


# --- MR foreground z-score -----------------------------------------------------------------------------------------


def test_zscore_uses_nonzero_foreground_and_zeroes_background() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((2, 8, 8), dtype=np.float32)
    image[:, 2:6, 2:6] = rng.normal(300.0, 40.0, size=(2, 4, 4))
    out = ForegroundZScore()(torch.from_numpy(image)).numpy()
    for c in range(2):
        foreground = out[c, 2:6, 2:6]
        assert abs(foreground.mean()) < 1e-5 and abs(foreground.std() - 1) < 1e-4
        expected = (image[c, 2:6, 2:6] - image[c, 2:6, 2:6].mean()) / image[c, 2:6, 2:6].std()
        np.testing.assert_allclose(foreground, expected, rtol=1e-4, atol=1e-5)
    assert np.all(out[:, :2] == 0)


def test_zscore_with_mask_key_and_empty_foreground() -> None:
    image = MetaTensor(torch.arange(16, dtype=torch.float32).reshape(1, 4, 4) + 10, affine=torch.eye(3))
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1  # statistics of values 10..17 only
    out = ForegroundZScored("image", mask_key="mask")({"image": image, "mask": mask})["image"]
    assert isinstance(out, MetaTensor)
    values = np.arange(10, 18, dtype=np.float32)
    np.testing.assert_allclose(out[0, :2].numpy().ravel(), (values - values.mean()) / values.std(), rtol=1e-5)
    assert torch.all(out[0, 2:] == 0)
    with pytest.raises(ValueError, match="no foreground"):
        ForegroundZScore()(torch.zeros(1, 3, 3))


# --- RAS + spacing, inverted exactly -------------------------------------------------------------------------------


def _nifti(tmp_path: Path, name: str, affine: np.ndarray, shape: tuple[int, int, int] = (11, 9, 7)) -> Path:
    rng = np.random.default_rng(1)
    data = rng.normal(0, 100, size=shape).astype(np.float32)
    data[3:8, 2:6, 2:5] += 400
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _affines() -> dict[str, np.ndarray]:
    lps = np.diag([-0.8, -0.9, 2.5, 1.0])
    lps[:3, 3] = (40.0, 30.0, -20.0)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    oblique = np.eye(4)
    oblique[:3, :3] = q @ np.diag([0.7, 1.1, 1.9])
    oblique[:3, 3] = (-5.0, 12.5, 3.0)
    permuted = np.zeros((4, 4))
    permuted[0, 2], permuted[1, 0], permuted[2, 1], permuted[3, 3] = 3.0, -1.0, 1.2, 1.0  # a sagittal stack
    return {"lps": lps, "oblique": oblique, "permuted": permuted}


@pytest.mark.parametrize("case", ["lps", "oblique", "permuted"])
@pytest.mark.parametrize("pixdim", [(1.0, 1.0, 1.0), (2.0, 0.6, 3.0)])
def test_invertd_returns_prediction_to_the_source_grid_exactly(
    tmp_path: Path, case: str, pixdim: tuple[float, float, float]
) -> None:
    path = _nifti(tmp_path, f"{case}.nii.gz", _affines()[case])
    pre = Compose(
        [
            LoadImaged("image", reader=SimpleITKReader(), image_only=True),
            EnsureChannelFirstd("image"),
            OrientSpacingd("image", pixdim=pixdim, mode="bilinear"),
            CTWindowd("image", level=200, width=1000),
        ]
    )
    data = pre({"image": str(path)})
    image = data["image"]
    source = LoadImaged("image", reader=SimpleITKReader(), image_only=True)({"image": str(path)})["image"]
    # RAS: the direction part of the preprocessed affine has positive diagonal-dominant axes, spacing = pixdim.
    linear = image.affine[:3, :3].numpy()
    np.testing.assert_allclose(np.linalg.norm(linear, axis=0), pixdim, rtol=1e-6)
    assert np.all(np.argmax(np.abs(linear), axis=0) == [0, 1, 2]) and np.all(np.diag(linear) > 0)
    label_values = torch.tensor([0.0, 1.0, 2.0, 5.0])
    prediction = (image > 0.5).float() * label_values[torch.randint(0, 4, image.shape)]
    data["pred"] = MetaTensor(prediction, meta=dict(image.meta), applied_operations=list(image.applied_operations))
    inverted = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(data)["pred"]
    assert tuple(inverted.shape[1:]) == tuple(source.shape)
    if case == "oblique":  # the inverse is computed by matrix products: float64 rounding only
        torch.testing.assert_close(inverted.affine, source.affine, rtol=0, atol=1e-12)
    else:
        assert torch.equal(inverted.affine, source.affine)  # bit for bit
    assert set(torch.unique(inverted).tolist()) <= {0.0, 1.0, 2.0, 5.0}  # nearest: no new label values


def test_cache_dataset_caches_through_orient_spacingd(tmp_path: Path) -> None:
    """The resampling is deterministic, so ``CacheDataset`` keeps its result and a training step starts from the
    resampled scan (as a ``Compose`` it counted as random: every step resampled the whole scan again)."""
    from monai.data import CacheDataset
    from monai.transforms import RandFlipd

    path = _nifti(tmp_path, "scan.nii.gz", _affines()["lps"])
    pre = Compose(
        [
            LoadImaged("image", reader=SimpleITKReader(), image_only=True),
            EnsureChannelFirstd("image"),
            OrientSpacingd("image", pixdim=(2.0, 2.0, 2.0), mode="bilinear"),
            RandFlipd("image", prob=0.5, spatial_axis=0),
        ]
    )
    dataset = CacheDataset([{"image": str(path)}], transform=pre, progress=False)
    cached = dataset._cache[0]["image"]
    np.testing.assert_allclose(np.linalg.norm(cached.affine[:3, :3].numpy(), axis=0), (2.0, 2.0, 2.0), rtol=1e-6)
    assert [op["class"] for op in cached.applied_operations] == ["Orientation", "SpatialResample"]
    assert dataset[0]["image"].shape == cached.shape


def test_orient_spacingd_without_pixdim_only_reorients_and_skips_a_missing_label() -> None:
    transform = OrientSpacingd(("image", "label"), pixdim=None, allow_missing_keys=True)
    assert [type(t).__name__ for t in transform.transforms] == ["Orientationd"]
    image = MetaTensor(torch.rand(1, 4, 5, 6), affine=torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0])))
    out = transform({"image": image})
    assert torch.equal(out["image"], image.flip(1))
    assert torch.allclose(out["image"].affine[0, 0], torch.tensor(1.0, dtype=out["image"].affine.dtype))


# --- image/label geometry check ------------------------------------------------------------------------------------


def test_check_geometry_accepts_a_matching_pair_and_names_both_files_otherwise() -> None:
    affine = torch.diag(torch.tensor([0.8, 0.8, 2.0, 1.0], dtype=torch.float64))
    image = MetaTensor(torch.zeros(2, 6, 5, 4), affine=affine, meta={"filename_or_obj": "/data/ct_001.nii.gz"})
    label = MetaTensor(torch.zeros(1, 6, 5, 4), affine=affine + 1e-4, meta={"filename_or_obj": "/data/seg_001.nii.gz"})
    data = {"image": image, "label": label}
    assert CheckGeometryd()(data) is data
    label_meta = {"filename_or_obj": "/data/seg_001.nii.gz"}
    shifted = MetaTensor(torch.zeros(1, 6, 5, 4), affine=affine.clone(), meta=dict(label_meta))
    shifted.affine[0, 3] = 0.5
    with pytest.raises(ImageInputError, match=r"ct_001\.nii\.gz: .*seg_001\.nii\.gz.*affines differ") as error:
        CheckGeometryd()({"image": image, "label": shifted})
    assert error.value.path == "/data/ct_001.nii.gz"
    cropped = MetaTensor(torch.zeros(1, 6, 5, 3), affine=affine, meta=dict(label_meta))
    with pytest.raises(ImageInputError, match=r"spatial shapes differ: \(6, 5, 4\) vs \(6, 5, 3\)"):
        CheckGeometryd()({"image": image, "label": cropped})
