"""Segmentation writers: geometry read back by other libraries, format fields, refusals, atomic writes."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from monai_unet.io import ImageInputError, SimpleITKReader
from monai_unet.io.grid import VoxelGrid
from monai_unet.io.save import SaveSegmentationd
from monai_unet.io.segments import DEFAULT_PALETTE
from monai_unet.io.writers import write_segmentation

# --- a small oblique CT series written with pydicom (shared with test_io_roundtrip.py) ---------------------------


def write_ct_series(
    folder: Path, rows: int = 12, columns: int = 16, slices: int = 6, empty_uids: bool = False
) -> tuple[list[Path], np.ndarray]:
    """Write an oblique CT series (one file per slice) and return its files and HU volume, indexed (x, y, z).

    Geometry: rows along LPS (cos 20°, sin 20°, 0), columns along (0, 0, -1) (a tilted coronal plane), pixel
    spacing 0.7 mm (rows) × 0.8 mm (columns), slices 2.5 mm apart along the normal, listed in reverse order on
    disk so that file order is not slice order. A bright 4 × 3 × 3 block (300 HU, one voxel 500 HU) sits on a
    -1000 HU background.
    """
    folder.mkdir(parents=True, exist_ok=True)
    angle = np.deg2rad(20.0)
    row_dir = np.array([np.cos(angle), np.sin(angle), 0.0])
    col_dir = np.array([0.0, 0.0, -1.0])
    normal = np.cross(row_dir, col_dir)
    origin = np.array([-12.5, 30.25, 101.0])
    hu = np.full((columns, rows, slices), -1000, dtype=np.int16)
    hu[5:9, 4:7, 2:5] = 300
    hu[5, 4, 2] = 500
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = "" if empty_uids else CTImageStorage
        ds.SOPInstanceUID = "" if empty_uids else meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = "" if empty_uids else study
        ds.SeriesInstanceUID = "" if empty_uids else series
        ds.FrameOfReferenceUID = frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Phantom", "P1", "", "O"
        ds.StudyDate, ds.StudyTime = dt.date.today().strftime("%Y%m%d"), "120000"
        ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "", "", "1"
        ds.Modality, ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "CT", "test", 3, k + 1
        ds.SeriesDescription = "synthetic oblique CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [float(v) for v in origin + 2.5 * k * normal]
        ds.PixelSpacing = [0.7, 0.8]  # between rows, between columns
        ds.SliceThickness = 2.5
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = (hu[:, :, k].T + 1024).astype(np.int16).tobytes()  # stored (row, column)
        path = folder / f"slice{slices - k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files, hu


def _oblique_reference(shape: tuple[int, ...] = (12, 10, 6)) -> MetaTensor:
    """A reference MetaTensor on an oblique, anisotropic grid with a non-trivial origin (RAS affine)."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q * np.array([0.7, 0.8, 2.5])
    affine[:3, 3] = (10.5, -3.25, 7.0)
    return MetaTensor(
        torch.zeros(1, *shape), affine=torch.from_numpy(affine), meta={"filename_or_obj": "case01.nii.gz"}
    )


def _labels(shape: tuple[int, ...] = (12, 10, 6)) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int64)
    labels[2:5, 3:7, 1:3] = 1
    labels[6:9, 1:2, 4] = 7
    return labels


def _lps_of(image: sitk.Image) -> np.ndarray:
    return VoxelGrid.from_sitk(image).lps_affine()


# --- NIfTI ---------------------------------------------------------------------------------------------------------


def test_nifti_geometry_and_dtype_read_back_by_simpleitk_and_nibabel(tmp_path: Path) -> None:
    reference = _oblique_reference()
    labels = torch.from_numpy(_labels()).float()[None]  # float, channel-first: what Invertd returns
    path = write_segmentation(labels, reference, tmp_path / "seg.nii.gz")
    image = sitk.ReadImage(str(path))
    assert image.GetPixelID() == sitk.sitkUInt8
    expected = VoxelGrid.from_reference(reference)
    assert image.GetSize() == expected.size
    np.testing.assert_allclose(_lps_of(image), expected.lps_affine(), atol=1e-5)  # NIfTI stores float32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), _labels())
    nifti = nib.load(path)
    np.testing.assert_allclose(nifti.affine, reference.affine.numpy(), atol=1e-5)
    assert nifti.get_data_dtype() == np.uint8
    assert int(nifti.header["sform_code"]) > 0 and int(nifti.header["qform_code"]) > 0


def test_nifti_uses_uint16_above_255_and_plain_nii(tmp_path: Path) -> None:
    labels = _labels()
    labels[0, 0, 0] = 1000
    path = write_segmentation(labels, _oblique_reference(), tmp_path / "seg.nii")
    assert nib.load(path).get_data_dtype() == np.uint16
    assert path.read_bytes()[344:348] == b"n+1\x00"  # uncompressed single-file NIfTI-1


def test_simpleitk_reference_and_2d(tmp_path: Path) -> None:
    image = sitk.Image(9, 7, sitk.sitkInt16)
    image.SetSpacing((0.5, 0.25))
    image.SetOrigin((3.0, -4.0))
    image.SetDirection((0.0, 1.0, 1.0, 0.0))
    labels = np.zeros((9, 7), dtype=bool)
    labels[2:4, 5] = True
    path = write_segmentation(labels, image, tmp_path / "em.nii.gz")
    back = sitk.ReadImage(str(path))
    assert back.GetSize() == (9, 7)
    np.testing.assert_allclose(_lps_of(back), VoxelGrid.from_sitk(image).lps_affine(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back).T, labels)


# --- 3D Slicer .seg.nrrd -------------------------------------------------------------------------------------------


def test_seg_nrrd_header_fields_and_geometry(tmp_path: Path) -> None:
    reference = _oblique_reference()
    path = write_segmentation(
        _labels(), reference, tmp_path / "seg.seg.nrrd", label_names={"1": "liver", 3: "absent"}, colors={7: (1, 0, 0)}
    )
    data, header = nrrd.read(str(path))
    grid = VoxelGrid.from_reference(reference)
    assert header["space"] == "left-posterior-superior"
    assert header["dimension"] == 3 and list(header["kinds"]) == ["domain"] * 3
    # Written with repr(), so the grid is exact, not float32-rounded.
    np.testing.assert_array_equal(header["space origin"], grid.origin)
    np.testing.assert_array_equal(header["space directions"].T, grid.lps_affine()[:3, :3])
    np.testing.assert_array_equal(data, _labels())
    assert data.dtype == np.uint8
    for key in ("Segmentation_SourceRepresentation", "Segmentation_MasterRepresentation"):
        assert header[key] == "Binary labelmap"
    assert header["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    assert header["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    # Segments ordered by value: 1 (named), 3 (named but absent), 7 (coloured).
    assert [header[f"Segment{n}_LabelValue"] for n in range(3)] == ["1", "3", "7"]
    assert "Segment3_ID" not in header
    assert [header[f"Segment{n}_Name"] for n in range(3)] == ["liver", "absent", "Segment_7"]
    assert [header[f"Segment{n}_ID"] for n in range(3)] == ["Segment_1", "Segment_3", "Segment_7"]
    assert header["Segment0_Extent"] == "2 4 3 6 1 2"
    assert header["Segment1_Extent"] == "0 -1 0 -1 0 -1"
    assert header["Segment2_Extent"] == "6 8 1 1 4 4"
    assert header["Segment2_Color"] == "1 0 0"
    assert [float(c) for c in header["Segment0_Color"].split()] == pytest.approx(DEFAULT_PALETTE[0], abs=1e-6)
    for n in range(3):
        assert header[f"Segment{n}_Layer"] == "0"
        assert header[f"Segment{n}_Tags"].startswith("TerminologyEntry:")
        assert header[f"Segment{n}_NameAutoGenerated"] == "0" and header[f"Segment{n}_ColorAutoGenerated"] == "0"
    image = sitk.ReadImage(str(path))  # and SimpleITK agrees on the geometry
    np.testing.assert_allclose(_lps_of(image), grid.lps_affine(), atol=1e-12)


def test_seg_nrrd_2d_is_one_slice_and_uint16(tmp_path: Path) -> None:
    labels = np.zeros((5, 4), dtype=np.int32)
    labels[1, 2] = 300
    reference = MetaTensor(
        torch.zeros(1, 5, 4), affine=torch.diag(torch.tensor([-0.5, -0.5, 1.0], dtype=torch.float64))
    )
    data, header = nrrd.read(str(write_segmentation(labels, reference, tmp_path / "em.seg.nrrd")))
    assert data.shape == (5, 4, 1) and data.dtype == np.uint16 and data[1, 2, 0] == 300
    assert header["Segment0_Extent"] == "1 1 2 2 0 0"
    raw = (tmp_path / "em.seg.nrrd").read_bytes()
    header_text, payload = raw.split(b"\n\n", 1)  # the header ends at the first blank line, then gzip data
    assert header_text.startswith(b"NRRD0004\n") and b"endian: little" in header_text
    assert np.frombuffer(gzip.decompress(payload), dtype="<u2").reshape((5, 4), order="F")[1, 2] == 300


TUMOUR = {
    "category": ["SCT", "49755003", "Morphologically Abnormal Structure"],
    "type": ["SCT", "108369006", "Neoplasm"],
    "region": ["SCT", "12738006", "Brain"],
}


def test_seg_nrrd_segments_carry_the_bundles_snomed_codes(tmp_path: Path) -> None:
    path = write_segmentation(
        _labels(), _oblique_reference(), tmp_path / "seg.seg.nrrd", label_names={1: "tumour"}, terminology={"1": TUMOUR}
    )
    _, header = nrrd.read(str(path))
    entry = header["Segment0_Tags"].removeprefix("TerminologyEntry:").removesuffix("|").split("~")
    assert entry == [
        "Segmentation category and type - DICOM master list",
        "SCT^49755003^Morphologically Abnormal Structure",
        "SCT^108369006^Neoplasm",
        "^^",
        "Anatomic codes - DICOM master list",
        "SCT^12738006^Brain",
        "^^",
    ]
    # a segment the table does not code is Slicer's generic Tissue
    assert "SCT^85756007^Tissue~SCT^85756007^Tissue" in header["Segment1_Tags"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"0": TUMOUR}, "label values >= 1"),
        ({"1": {"type": TUMOUR["type"]}}, "needs 'category' and 'type'"),
        ({"1": {**TUMOUR, "modifier": ["SCT", "1", "x"]}}, "unknown field"),
        ({"1": {**TUMOUR, "type": ["SCT", "108369006"]}}, "three non-empty strings"),
        ({"1": {**TUMOUR, "type": ["SCT", "1~2", "x"]}}, "reserves"),
    ],
)
def test_malformed_terminology_is_refused_before_writing(tmp_path: Path, table: dict, problem: str) -> None:
    target = tmp_path / "seg.seg.nrrd"
    with pytest.raises(ValueError, match=problem):
        write_segmentation(_labels(), _oblique_reference(), target, terminology=table)
    assert not target.exists()


# --- DICOM SEG -----------------------------------------------------------------------------------------------------


def _series_reference(files: list[Path], hu: np.ndarray) -> MetaTensor:
    """The reference as SimpleITK/GDCM places the series (independent of our reader)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(files[0].parent)))
    image = reader.Execute()
    grid = VoxelGrid.from_sitk(image)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    assert array.shape == hu.shape
    return MetaTensor(
        torch.from_numpy(array[None].astype(np.float32)),
        affine=torch.from_numpy(grid.ras_affine()),
        meta={"filename_or_obj": str(files[0].parent)},
    )


def _seg_labels_on_source(seg: hd.seg.Segmentation, files: list[Path]) -> dict[str, np.ndarray]:
    """SOP instance UID of each referenced source slice → its label frame (segment numbers), from the SEG alone."""
    frames: dict[str, np.ndarray] = {}
    pixels = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frame = frames.setdefault(uid, np.zeros(pixels.shape[1:], dtype=np.int64))
        frame[pixels[index] > 0] = number
    return frames


def test_dicom_seg_references_source_and_places_labels_on_source_pixels(tmp_path: Path) -> None:
    files, hu = write_ct_series(tmp_path / "ct")
    reference = _series_reference(files, hu)
    labels = np.select([hu == 500, hu == 300], [2, 4], 0)
    out = write_segmentation(labels, reference, tmp_path / "seg", label_names={4: "block"}, terminology={4: TUMOUR})
    assert out == tmp_path / "seg" / "segmentation.dcm" and sorted(os.listdir(tmp_path / "seg")) == [out.name]
    seg = hd.seg.segread(out)
    assert seg.SegmentationType == "BINARY"
    assert [(s.SegmentNumber, s.SegmentLabel) for s in seg.SegmentSequence] == [(1, "Segment_2"), (2, "block")]
    coded = [
        (s.SegmentedPropertyCategoryCodeSequence[0].CodeValue, s.SegmentedPropertyTypeCodeSequence[0].CodeValue)
        for s in seg.SegmentSequence
    ]
    assert coded == [("85756007", "85756007"), ("49755003", "108369006")]  # uncoded: Tissue; coded: the bundle's
    assert seg.SegmentSequence[1].AnatomicRegionSequence[0].CodeMeaning == "Brain"
    assert "AnatomicRegionSequence" not in seg.SegmentSequence[0]
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(f) for f in files)}
    source = next(iter(sources.values()))
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(sources)
    # Every source slice: the SEG's frame holds segment 1 exactly at the 500 HU pixels and 2 at the 300 HU ones.
    frames = _seg_labels_on_source(seg, files)
    assert 0 < len(frames) < len(sources)  # empty frames are omitted
    for uid, ds in sources.items():
        stored_hu = ds.pixel_array.astype(np.int64) - 1024
        expected = np.select([stored_hu == 500, stored_hu == 300], [1, 2], 0)
        np.testing.assert_array_equal(frames.get(uid, np.zeros_like(expected)), expected)
    # Geometry of the SEG frames is the source's.
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose([float(v) for v in orientation], source.ImageOrientationPatient, atol=1e-6)
    spacing = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    np.testing.assert_allclose([float(v) for v in spacing], source.PixelSpacing)


def test_dicom_seg_repairs_empty_uids_from_file_meta(tmp_path: Path) -> None:
    files, hu = write_ct_series(tmp_path / "ct", empty_uids=True)
    with pytest.warns(UserWarning) as warned:
        out = write_segmentation(hu > 0, _series_reference(files, hu), tmp_path / "seg")
    messages = " ".join(str(w.message) for w in warned)
    assert "empty StudyInstanceUID" in messages and "empty SeriesInstanceUID" in messages
    seg = hd.seg.segread(out)
    media_uids = {pydicom.dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID for f in files}
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == media_uids
    assert seg.StudyInstanceUID  # a substitute, never empty


def test_dicom_seg_of_an_empty_prediction_needs_named_segments(tmp_path: Path) -> None:
    files, hu = write_ct_series(tmp_path / "ct")
    reference = _series_reference(files, hu)
    with pytest.raises(ImageInputError, match=r"all background.*label_names"):
        write_segmentation(np.zeros(hu.shape), reference, tmp_path / "seg")
    assert sorted(os.listdir(tmp_path)) == ["ct"]
    seg = hd.seg.segread(write_segmentation(np.zeros(hu.shape), reference, tmp_path / "seg", label_names={1: "tumour"}))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["tumour"]
    assert seg.NumberOfFrames == len(files) and not seg.pixel_array.any()


def test_dicom_seg_refuses_reference_not_read_from_dicom(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match=r"not read from DICOM.*case01\.nii\.gz"):
        write_segmentation(_labels(), _oblique_reference(), tmp_path / "seg")
    assert not (tmp_path / "seg").exists()


def test_dicom_seg_refuses_labels_off_the_source_grid(tmp_path: Path) -> None:
    files, hu = write_ct_series(tmp_path / "ct")
    reference = _series_reference(files, hu)
    shifted = reference.clone()
    shifted.affine = reference.affine + torch.tensor([[0, 0, 0, 0.3]] + [[0.0] * 4] * 3, dtype=torch.float64)
    with pytest.raises(ImageInputError, match="none of the DICOM images lies on the reference grid"):
        write_segmentation(hu > 0, shifted, tmp_path / "seg")
    assert sorted(os.listdir(tmp_path)) == ["ct"]


# --- refusals and atomicity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.full((12, 10, 6), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.full((12, 10, 6), 0.5, dtype=np.float32), "fractional values"),
        (-np.ones((12, 10, 6), dtype=np.int16), r"span \[-1, -1\]"),
        (np.full((12, 10, 6), 70000, dtype=np.int64), r"span \[70000, 70000\]"),
        (np.zeros((2, 12, 10, 6)), "2 channels"),
        (np.zeros((12, 10, 5)), "do not match the reference image"),
    ],
)
@pytest.mark.parametrize("suffix", [".nii.gz", ".seg.nrrd"])
def test_bad_labels_are_refused_and_existing_target_kept(
    tmp_path: Path, labels: np.ndarray, message: str, suffix: str
) -> None:
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"previous result")
    before = labels.copy()
    with pytest.raises(ImageInputError, match=message) as error:
        write_segmentation(labels, _oblique_reference(), target)
    assert str(target) in str(error.value)
    assert target.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == [target.name]
    np.testing.assert_array_equal(labels, before)  # inputs are never modified


def test_labels_with_another_affine_are_refused(tmp_path: Path) -> None:
    reference = _oblique_reference()
    moved = MetaTensor(torch.from_numpy(_labels())[None], affine=reference.affine.clone())
    moved.affine[2, 3] += 0.01
    with pytest.raises(ImageInputError, match=r"affine .* differs"):
        write_segmentation(moved, reference, tmp_path / "x.nii.gz")


def test_unknown_suffix_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match=r"suffix '\.mha'"):
        write_segmentation(_labels(), _oblique_reference(), tmp_path / "x.mha")
    with pytest.raises(ImageInputError, match="output folder does not exist"):
        write_segmentation(_labels(), _oblique_reference(), tmp_path / "missing" / "x.nii.gz")


def test_failure_inside_the_writer_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.seg.nrrd"
    target.write_bytes(b"previous result")

    def fail(*args: object, **kwargs: object) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr("monai_unet.io.seg_nrrd.gzip.compress", fail)
    with pytest.raises(OSError, match="disk full"):
        write_segmentation(_labels(), _oblique_reference(), target)
    assert target.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == [target.name]


def test_save_transform_names_outputs_after_the_source(tmp_path: Path) -> None:
    reference = _oblique_reference()
    prediction = MetaTensor(
        torch.from_numpy(_labels()).float()[None],
        affine=reference.affine,
        meta={"filename_or_obj": "/data/case01.nii.gz"},
    )
    saver = SaveSegmentationd("pred", output_dir=tmp_path, output_ext=".seg.nrrd", label_names={1: "liver"})
    out = saver({"pred": prediction})
    assert out["pred"].meta["saved_to"] == str(tmp_path / "case01_seg.seg.nrrd")
    assert nrrd.read_header(str(tmp_path / "case01_seg.seg.nrrd"))["Segment0_Name"] == "liver"
    for not_for_labels in (".tif", ".nrrd", ".mha"):
        with pytest.raises(ValueError, match="output_ext"):
            SaveSegmentationd("pred", output_ext=not_for_labels)


def test_save_transform_writes_dicom_seg_for_a_series_read_by_our_reader(tmp_path: Path) -> None:
    files, hu = write_ct_series(tmp_path / "ct")
    image = LoadImage(reader=SimpleITKReader(), image_only=True, ensure_channel_first=True)(str(tmp_path / "ct"))
    out = SaveSegmentationd("pred", output_dir=tmp_path, output_ext="dicomseg")({"pred": (image > 0).float()})
    assert out["pred"].meta["saved_to"] == str(tmp_path / "ct_seg" / "segmentation.dcm")
    seg = hd.seg.segread(tmp_path / "ct_seg" / "segmentation.dcm")
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    assert int(seg.pixel_array.sum()) == int((hu > 0).sum())


@pytest.mark.shared
def test_dicom_seg_on_enhanced_multiframe_ct(shared_data: Path, tmp_path: Path) -> None:
    """One enhanced CT file (2 frames, placed through per-frame functional groups): SEG frames cite frame numbers."""
    source = shared_data / "pydicom_data_selected" / "eCT_Supplemental.dcm"
    image = LoadImage(reader=SimpleITKReader(min_slices=2), image_only=True, ensure_channel_first=True)(str(source))
    labels = (image > 100).float()
    seg = hd.seg.segread(write_segmentation(labels, image, tmp_path / "seg"))
    ct = pydicom.dcmread(source, stop_before_pixels=True)
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    assert len(frames) == 2
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
        source_position = ct.PerFrameFunctionalGroupsSequence[number - 1].PlanePositionSequence[0].ImagePositionPatient
        assert [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient] == pytest.approx(
            [float(v) for v in source_position]
        )
        z = list(image.meta["frame_order"]).index(number - 1)
        np.testing.assert_array_equal(frame.T, labels[0, :, :, z].numpy())
