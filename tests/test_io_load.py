"""LoadScan(d): the same MetaTensor as LoadImage(reader=SimpleITKReader()) without the reordering copy, and the same
results through typical preprocessing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImage,
    LoadImaged,
    Orientationd,
    ScaleIntensityRanged,
    Spacingd,
)

from monai_unet.io import ImageInputError, LoadScan, LoadScand, SimpleITKReader
from monai_unet.transforms import CTWindowd


def lps_oblique_affine() -> np.ndarray:
    """A RAS affine of an LPS-stored, slightly rotated scan (x and y flipped), anisotropic voxels."""
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    affine = np.eye(4)
    affine[:3, :3] = np.array([[-c, s, 0], [-s, -c, 0], [0, 0, 1.0]]) @ np.diag([0.8, 0.7, 2.5])
    affine[:3, 3] = [120.0, 95.0, -300.0]
    return affine


def ct_file(tmp_path, name="ct.nii.gz", shape=(23, 19, 11), dtype=np.int16, seed=0) -> str:
    data = np.random.default_rng(seed).integers(-1024, 1500, shape).astype(dtype)
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, lps_oblique_affine()), path)
    return str(path)


def assert_same_meta(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if isinstance(value, (np.ndarray, torch.Tensor)):
            np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(value), err_msg=str(key))
        elif isinstance(value, float) and np.isnan(value):
            assert np.isnan(ours[key])
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("dtype", [np.float32, None])
def test_nifti_same_tensor_affine_and_meta_as_load_image(tmp_path, dtype):
    path = ct_file(tmp_path)
    ours = LoadScan(dtype=dtype)(path)
    theirs = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=dtype)(path)
    assert ours.dtype == theirs.dtype == (torch.float32 if dtype else torch.int16)
    assert ours.shape == theirs.shape == (23, 19, 11)
    assert not ours.is_contiguous()  # the file's voxel order, viewed as (x, y, z)
    assert torch.equal(ours.as_tensor(), theirs.as_tensor())
    assert torch.equal(ours.affine, theirs.affine)
    assert_same_meta(ours.meta, theirs.meta)
    assert ours.meta["source_dtype"] == "int16"


def test_uint16_becomes_int32_as_in_load_image(tmp_path):
    path = ct_file(tmp_path, dtype=np.uint16)
    ours = LoadScan(dtype=None)(path)
    theirs = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=None)(path)
    assert ours.dtype == theirs.dtype == torch.int32
    assert torch.equal(ours.as_tensor(), theirs.as_tensor())


def test_dicom_series_and_channel_files(tmp_path, sample_data):
    series = sample_data / "totalsegmentator_ct_dicom" / "series"
    ours = LoadScan()(series)
    theirs = LoadImage(reader=SimpleITKReader(), image_only=True)(series)
    assert tuple(ours.shape) == (512, 512, 5) and torch.equal(ours.as_tensor(), theirs.as_tensor())
    assert_same_meta(ours.meta, theirs.meta)
    assert ours.meta["source_dtype"] == "int16" and ours.dtype == torch.float32
    channels = [ct_file(tmp_path, "flair.nii.gz", seed=1), ct_file(tmp_path, "t1c.nii.gz", seed=2)]
    ours = LoadScan(ensure_channel_first=True)(channels)
    theirs = LoadImage(reader=SimpleITKReader(), image_only=True, ensure_channel_first=True)(channels)
    assert tuple(ours.shape) == (2, 23, 19, 11) and torch.equal(ours.as_tensor(), theirs.as_tensor())
    assert_same_meta(ours.meta, theirs.meta)


def test_refusals_still_raised(tmp_path):
    path = ct_file(tmp_path, shape=(30, 30, 30))
    blob = open(path, "rb").read()
    (tmp_path / "cut.nii.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageInputError, match=r"cut.nii.gz: is truncated"):
        LoadScan()(tmp_path / "cut.nii.gz")
    data = np.zeros((4, 5, 6), np.float64)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(ImageInputError, match=r"holds 1 NaN or infinite voxel\(s\), the first at voxel \(1, 2, 3\)"):
        LoadScan()(tmp_path / "nan.nii.gz")


def test_preprocessing_gives_identical_results(tmp_path):
    """Non-contiguous input through MONAI's usual preprocessing and our CT window: bit-identical to LoadImaged."""
    files = {"image": ct_file(tmp_path), "label": ct_file(tmp_path, "label.nii.gz", dtype=np.uint8, seed=3)}
    preprocessing = [
        EnsureChannelFirstd(["image", "label"]),
        Orientationd(["image", "label"], axcodes="RAS"),
        Spacingd(["image", "label"], pixdim=(1.0, 1.0, 2.0), mode=("bilinear", "nearest")),
        ScaleIntensityRanged("image", a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
        CTWindowd("image", preset="abdomen"),
    ]
    ours = Compose([LoadScand(["image", "label"]), *preprocessing])(files)
    theirs = Compose([LoadImaged(["image", "label"], reader=SimpleITKReader()), *preprocessing])(files)
    for key in ("image", "label"):
        assert ours[key].shape == theirs[key].shape
        assert torch.equal(ours[key].as_tensor(), theirs[key].as_tensor()), key
        assert torch.equal(ours[key].affine, theirs[key].affine), key
    assert ours["image"].shape[1:] != (23, 19, 11)  # the spacing step did resample
