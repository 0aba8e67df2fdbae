"""``write_probabilities``: float maps on the reference's grid, written atomically, MONAI's channel layout."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from monai_unet.io import ImageInputError, OutputWriteError, SavePredictiond, write_probabilities
from monai_unet.io.grid import VoxelGrid


def _probabilities(channels: int, shape=(12, 10, 6)) -> MetaTensor:
    """Foreground probabilities ``(C, i, j, k)`` on an oblique, anisotropic grid (RAS affine)."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q * np.array([0.7, 0.8, 2.5])
    affine[:3, 3] = (10.5, -3.25, 7.0)
    values = torch.from_numpy(np.random.default_rng(1).random((channels, *shape), dtype=np.float32))
    return MetaTensor(values, affine=torch.from_numpy(affine), meta={"filename_or_obj": "/data/case01.nii.gz"})


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_one_class_is_a_float32_volume_on_the_reference_grid(tmp_path: Path, suffix: str) -> None:
    probabilities = _probabilities(1)
    path = write_probabilities(probabilities, None, tmp_path / f"case01_prob{suffix}")
    image = sitk.ReadImage(str(path))
    assert image.GetPixelID() == sitk.sitkFloat32 and image.GetDimension() == 3
    reference = VoxelGrid.from_reference(probabilities)
    assert VoxelGrid.from_sitk(image).same_as(reference, atol_mm=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), probabilities[0].numpy())
    header = nib.load(path).header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no temporaries"


def test_several_classes_are_channels_last_as_monai_writes_them(tmp_path: Path) -> None:
    probabilities = _probabilities(3)
    out = SavePredictiond(
        "probabilities", output_dir=tmp_path, output_postfix="prob", probabilities=True, name_key="case"
    )({"probabilities": probabilities, "case": "pat01"})
    path = tmp_path / "pat01_prob.nii.gz"
    assert out["probabilities"].meta["saved_to"] == str(path)
    image = nib.load(path)
    assert image.shape == (12, 10, 6, 3)
    np.testing.assert_array_equal(np.asarray(image.dataobj), probabilities.numpy().transpose(1, 2, 3, 0))
    np.testing.assert_allclose(image.affine, probabilities.affine.numpy(), atol=1e-5)


def test_bad_probabilities_and_formats_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    probabilities = _probabilities(1)
    with pytest.raises(ImageInputError, match="not a format for probabilities"):
        write_probabilities(probabilities, None, tmp_path / "case01_prob.seg.nrrd")
    broken = probabilities.clone()
    broken[0, 3, 3, 3] = float("nan")
    with pytest.raises(ImageInputError, match="NaN"):
        write_probabilities(broken, None, tmp_path / "case01_prob.nii.gz")
    with pytest.raises(ImageInputError, match="do not match the reference image"):
        write_probabilities(probabilities, _probabilities(1, shape=(12, 10, 5)), tmp_path / "case01_prob.nii.gz")
    with pytest.raises(ValueError, match="output_ext"):
        SavePredictiond("probabilities", output_ext=".png", probabilities=True)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    """A write that runs out of room raises the named error; the earlier file stays byte for byte."""
    target = tmp_path / "case01_prob.nii.gz"
    target.write_bytes(b"earlier probabilities")
    real_save = nib.save

    def full_disk(image, path):
        real_save(image, path)
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(nib, "save", full_disk)
    with pytest.raises(OutputWriteError, match=r"case01_prob\.nii\.gz: no space left on device"):
        write_probabilities(_probabilities(1), None, target)
    assert target.read_bytes() == b"earlier probabilities"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case01_prob.nii.gz"]
