"""Round trip: DICOM series → SimpleITKReader → RAS + spacing → threshold "prediction" → Invertd → NIfTI, .seg.nrrd,
DICOM SEG → read back by SimpleITK, pynrrd and highdicom/pydicom → the source series' grid, labels where they were.

The source grid is taken from SimpleITK's own ImageSeriesReader (GDCM), independent of our reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged
from test_io_writers import write_ct_series

from monai_unet.io import SimpleITKReader
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.writers import write_segmentation
from monai_unet.transforms import CheckGeometryd, CTWindowd, OrientSpacingd

THRESHOLD_HU = 100.5  # between integers, so no voxel sits on the threshold
LEVEL, WIDTH = 50.0, 400.0  # the "abdomen" window


def _source_series(folder: Path) -> tuple[sitk.Image, list[str]]:
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(files)
    return reader.Execute(), list(files)


def _round_trip(folder: Path, out: Path, pixdim: tuple[float, float, float]) -> tuple[MetaTensor, dict[str, Path]]:
    """Preprocess, threshold, invert, write all three formats; return the inverted prediction and the outputs."""
    pre = Compose(
        [
            LoadImaged("image", reader=SimpleITKReader(), image_only=True),
            EnsureChannelFirstd("image"),
            OrientSpacingd("image", pixdim=pixdim, mode="bilinear"),
            CTWindowd("image", "abdomen"),
        ]
    )
    data = pre({"image": str(folder)})
    image = data["image"]
    prediction = MetaTensor((image > (THRESHOLD_HU - (LEVEL - WIDTH / 2)) / WIDTH).float(), meta=dict(image.meta))
    prediction.applied_operations = list(image.applied_operations)
    data["pred"] = prediction
    inverted = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(data)["pred"]
    out.mkdir()
    outputs = {
        "nifti": write_segmentation(inverted, None, out / "seg.nii.gz"),
        "nrrd": write_segmentation(inverted, None, out / "seg.seg.nrrd", label_names={1: "dense"}),
        "dicomseg": write_segmentation(inverted, None, out / "dicomseg", label_names={1: "dense"}),
    }
    return inverted, outputs


def _check_outputs(source: sitk.Image, outputs: dict[str, Path], expected: np.ndarray, exact: bool) -> None:
    """Geometry of every output equals the source series; labels equal ``expected`` (x, y, z) where ``exact``."""
    grid = VoxelGrid.from_sitk(source)

    nifti = sitk.ReadImage(str(outputs["nifti"]))
    assert nifti.GetSize() == source.GetSize()
    np.testing.assert_allclose(nifti.GetOrigin(), source.GetOrigin(), atol=1e-4)  # NIfTI stores float32
    np.testing.assert_allclose(nifti.GetSpacing(), source.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(nifti.GetDirection(), source.GetDirection(), atol=1e-6)
    nifti_labels = sitk.GetArrayFromImage(nifti).transpose(2, 1, 0)

    data, header = nrrd.read(str(outputs["nrrd"]))
    assert tuple(header["sizes"]) == source.GetSize()
    np.testing.assert_allclose(header["space origin"], source.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(header["space directions"].T, grid.lps_affine()[:3, :3], atol=1e-9)
    np.testing.assert_array_equal(data, nifti_labels)

    if exact:
        np.testing.assert_array_equal(nifti_labels, expected)
    else:  # resampled and back: nearest-neighbour labels agree with the source threshold almost everywhere
        assert (nifti_labels == expected).mean() > 0.97

    seg = hd.seg.segread(outputs["dicomseg"])
    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(
        [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
        np.asarray(source.GetDirection()).reshape(3, 3)[:, :2].T.ravel(),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing], source.GetSpacing()[1::-1], rtol=1e-6
    )
    assert (seg.Columns, seg.Rows) == source.GetSize()[:2]
    # Each SEG frame sits where its source slice is, and holds the labels of that slice.
    to_index = np.linalg.inv(grid.lps_affine())
    frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    positions = []
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.array([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient])
        index = to_index[:3, :3] @ position + to_index[:3, 3]
        np.testing.assert_allclose(index[:2], 0, atol=1e-4)
        k = round(index[2])
        assert abs(index[2] - k) < 1e-4 and 0 <= k < source.GetSize()[2]
        positions.append(k)
        np.testing.assert_array_equal(frame.T, nifti_labels[:, :, k])
    assert sorted(positions) == [k for k in range(source.GetSize()[2]) if nifti_labels[:, :, k].any()]


def test_round_trip_synthetic_oblique_series(tmp_path: Path) -> None:
    folder = tmp_path / "ct"
    write_ct_series(folder, rows=14, columns=18, slices=7)
    source, files = _source_series(folder)
    hu = sitk.GetArrayFromImage(source).transpose(2, 1, 0)
    inverted, outputs = _round_trip(folder, tmp_path / "out", pixdim=(0.0, 0.0, 0.0))  # keep the spacing
    expected = (hu > THRESHOLD_HU).astype(np.uint8)
    assert expected.sum() == 4 * 3 * 3
    np.testing.assert_array_equal(inverted[0].numpy(), expected)
    _check_outputs(source, outputs, expected, exact=True)
    seg = pydicom.dcmread(outputs["dicomseg"])
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}


def test_round_trip_resampled_grid_returns_to_source(tmp_path: Path) -> None:
    folder = tmp_path / "ct"
    write_ct_series(folder, rows=14, columns=18, slices=7)
    source, _ = _source_series(folder)
    hu = sitk.GetArrayFromImage(source).transpose(2, 1, 0)
    inverted, outputs = _round_trip(folder, tmp_path / "out", pixdim=(0.5, 0.5, 1.25))
    assert tuple(inverted.shape[1:]) == source.GetSize()
    # Bilinear there, nearest back: the block's edge may move by one voxel, the grid must not move at all.
    _check_outputs(source, outputs, (hu > THRESHOLD_HU).astype(np.uint8), exact=False)


@pytest.mark.slow
@pytest.mark.shared
def test_round_trip_totalsegmentator_dicom(shared_data: Path, tmp_path: Path) -> None:
    """Real series: JPEG 2000, empty study/series/instance UIDs, 2 mm spacing with 3 mm slices."""
    folder = shared_data / "totalsegmentator_examples" / "ct_dicom" / "series"
    source, files = _source_series(folder)
    hu = sitk.GetArrayFromImage(source).transpose(2, 1, 0)
    with pytest.warns(UserWarning, match="empty StudyInstanceUID"):
        inverted, outputs = _round_trip(folder, tmp_path / "out", pixdim=(1.5, 1.5, 3.0))
    assert torch.equal(inverted.affine, torch.from_numpy(VoxelGrid.from_sitk(source).ras_affine()))
    _check_outputs(source, outputs, (hu > THRESHOLD_HU).astype(np.uint8), exact=False)
    seg = pydicom.dcmread(outputs["dicomseg"])
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {
        pydicom.dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID for f in files
    }


@pytest.mark.slow
@pytest.mark.shared
def test_totalsegmentator_labels_as_dicom_seg_land_on_the_anatomy(shared_data: Path, tmp_path: Path) -> None:
    """TotalSegmentator's 31-label map (NIfTI, LAS: rows flipped against the DICOM) written as a named DICOM SEG on
    the RAS-oriented series: read back through the SEG's frame references alone, the mean HU of each organ in the
    source pixels is anatomically right (SOURCE.md: liver 89, spleen 80, aorta 177, vertebrae 267-292)."""
    root = shared_data / "totalsegmentator_examples"
    names = json.loads((root / "class_map_total_and_total_mr.json").read_text())["total"]
    load = Compose(
        [
            LoadImaged("image", reader=SimpleITKReader(), image_only=True),
            LoadImaged("label", reader="NibabelReader", image_only=True),  # a label from another reader
            EnsureChannelFirstd(("image", "label")),
            OrientSpacingd(("image", "label"), pixdim=None),
            CheckGeometryd(("image", "label")),
        ]
    )
    data = load(
        {"image": str(root / "ct_dicom" / "series"), "label": str(root / "ct_dicom" / "example_seg_dicom.nii.gz")}
    )
    present = sorted(set(torch.unique(data["label"]).int().tolist()) - {0})
    assert len(present) == 31
    out = write_segmentation(data["label"], data["image"], tmp_path / "seg", label_names=names)
    seg = hd.seg.segread(out)
    by_name = {s.SegmentLabel: int(s.SegmentNumber) for s in seg.SegmentSequence}
    assert len(by_name) == len(names)  # every named class is described, present or not
    sources = {}
    for file in (root / "ct_dicom" / "series").iterdir():
        ds = pydicom.dcmread(file)
        sources[str(ds.file_meta.MediaStorageSOPInstanceUID)] = ds.pixel_array * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept
        )
    values: dict[int, list[np.ndarray]] = {}
    frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        values.setdefault(number, []).append(sources[uid][frame > 0])
    mean_hu = {name: float(np.concatenate(values[by_name[name]]).mean()) for name in ("liver", "spleen", "aorta")}
    assert 70 < mean_hu["liver"] < 110 and 60 < mean_hu["spleen"] < 100 and 150 < mean_hu["aorta"] < 210, mean_hu
    vertebra = float(np.concatenate(values[by_name["vertebrae_T12"]]).mean())
    assert vertebra > 200, vertebra
