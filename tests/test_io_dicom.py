"""DICOM series reading: order along the normal, geometry, HU, series selection and every refusal, on real files.

The series are written by pydicom into ``tmp_path`` (tiny CT slices, uncompressed), plus the 5-slice JPEG 2000
TotalSegmentator excerpt in ``sample_data/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from reading import read_checking_header

from monai_unet.io import ImageInputError, SimpleITKReader, list_dicom_series, read_dicom_series

ROWS, COLS = 6, 8
PIXEL_SPACING = (0.8, 0.6)  # between rows, between columns (mm)


def write_slice(
    path: Path,
    stored: np.ndarray,
    position: tuple[float, float, float],
    *,
    series_uid: str,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    instance: int = 1,
    description: str = "synthetic CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
) -> None:
    """One uncompressed CT slice (12-bit unsigned stored values) with the given geometry."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = "CT"
    ds.SeriesDescription = description
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance
    ds.PatientID = "anon"
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    ds.PixelSpacing = list(PIXEL_SPACING)
    ds.SliceThickness = 2.0
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0  # as CT scanners store
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = stored.astype(np.uint16).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def write_series(
    folder: Path,
    positions: list[tuple[float, float, float]],
    *,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    series_uid: str | None = None,
    values=None,
    **kwargs,
) -> str:
    """Write one file per position, named and numbered in *reverse* order of position; returns the series UID.

    ``values(k, position)`` gives the (ROWS, COLS) stored values of slice k; by default slice k holds 1100 + 10 k
    plus the column index, so order and orientation can be checked.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    n = len(positions)
    for k, position in enumerate(positions):
        stored = values(k, position) if values else 1100 + 10 * k + np.tile(np.arange(COLS), (ROWS, 1))
        write_slice(
            folder / f"IM{n - k:04d}.dcm",
            np.asarray(stored),
            position,
            series_uid=series_uid,
            orientation=orientation,
            instance=n - k,
            **kwargs,
        )
    return series_uid


def z_positions(zs) -> list[tuple[float, float, float]]:
    return [(-10.0, 20.0, float(z)) for z in zs]


def read(source, **options):
    return read_checking_header(source, **options)


def test_slices_ordered_along_normal_with_hu_and_geometry(tmp_path):
    uid = write_series(tmp_path / "s", z_positions([4.0, 0.0, 2.0, 6.0]))  # written out of order
    array, meta = read(tmp_path / "s")
    assert array.shape == (COLS, ROWS, 4)  # (x = columns, y = rows, z = slices)
    assert array.dtype == np.int16  # stored uint16 + intercept -1024: signed HU
    # Slice k was written with 1100 + 10 k at position order [4, 0, 2, 6] → sorted z 0, 2, 4, 6 is k = 1, 2, 0, 3.
    np.testing.assert_array_equal(array[0, 0, :], np.array([1110, 1120, 1100, 1130]) - 1024)
    np.testing.assert_array_equal(array[:, 0, 0], 1110 - 1024 + np.arange(COLS))  # x runs along a row
    expected_lps = np.array(
        [[0.6, 0, 0, -10.0], [0, 0.8, 0, 20.0], [0, 0, 2.0, 0.0], [0, 0, 0, 1]]
    )  # columns: row dir × 0.6, column dir × 0.8, normal × 2; origin = lowest slice
    np.testing.assert_allclose(meta["affine"], np.diag([-1, -1, 1, 1]) @ expected_lps, atol=1e-9)
    np.testing.assert_allclose(meta["source_origin_lps"], [-10.0, 20.0, 0.0])
    np.testing.assert_allclose(meta["spacing"], [0.6, 0.8, 2.0])
    assert meta["space"] == "RAS"
    assert meta["SeriesInstanceUID"] == uid and meta["Modality"] == "CT"
    files = [Path(f).name for f in meta["source_files"]]
    assert files == ["IM0003.dcm", "IM0002.dcm", "IM0004.dcm", "IM0001.dcm"]
    sops = [pydicom.dcmread(f).SOPInstanceUID for f in meta["source_files"]]
    assert meta["SOPInstanceUIDs"] == sops


def test_oblique_series_affine_follows_orientation(tmp_path):
    angle = np.radians(20)
    row = (np.cos(angle), np.sin(angle), 0.0)
    column = (0.0, 0.0, -1.0)  # coronal-ish oblique
    normal = np.cross(row, column)
    positions = [tuple(np.array([5.0, -3.0, 40.0]) + 1.5 * k * normal) for k in range(3)]
    write_series(tmp_path / "s", positions, orientation=row + column)
    _, meta = read(tmp_path / "s")
    lps = np.diag([-1, -1, 1, 1]) @ meta["affine"]
    np.testing.assert_allclose(lps[:3, 0], np.array(row) * 0.6, atol=1e-6)
    np.testing.assert_allclose(lps[:3, 1], np.array(column) * 0.8, atol=1e-6)
    np.testing.assert_allclose(lps[:3, 2], normal * 1.5, atol=1e-5)
    np.testing.assert_allclose(lps[:3, 3], positions[0], atol=1e-5)


def test_list_of_files_reads_as_one_series(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 1, 2]))
    files = sorted(str(p) for p in (tmp_path / "s").iterdir())
    from_folder, _ = read(tmp_path / "s")
    from_files, meta = read(files)
    np.testing.assert_array_equal(from_files, from_folder)
    assert meta["original_channel_dim"] != 0  # one volume, not channels


def test_several_series_listed_then_selected(tmp_path):
    first = write_series(tmp_path / "s", z_positions([0, 1, 2]), description="arterial")
    second = write_series(tmp_path / "tmp", z_positions([0, 1, 2, 3]), description="venous")
    for p in (tmp_path / "tmp").iterdir():
        p.rename(tmp_path / "s" / f"B{p.name}")
    with pytest.raises(ImageInputError) as info:
        read(tmp_path / "s")
    message = str(info.value)
    assert "2 DICOM series" in message and first in message and second in message
    assert "'arterial'" in message and "'venous'" in message and "3 slices" in message and "4 slices" in message
    assert "series_uid" in message
    array, meta = read(tmp_path / "s", series_uid=second)
    assert array.shape[2] == 4 and meta["SeriesDescription"] == "venous"
    assert {s.uid: s.frames for s in list_dicom_series(tmp_path / "s")} == {first: 3, second: 4}


def test_too_few_slices(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2]))
    with pytest.raises(ImageInputError, match=r"only 2 slice\(s\).*at least 3"):
        read(tmp_path / "s")
    assert read(tmp_path / "s", min_slices=2)[0].shape[2] == 2


def test_mixed_orientation(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2, 4]))
    write_slice(tmp_path / "s" / "scout.dcm", np.zeros((ROWS, COLS)), (0, 0, 0), orientation=(0, 1, 0, 0, 0, -1),
                series_uid=pydicom.dcmread(next((tmp_path / "s").iterdir())).SeriesInstanceUID)  # fmt: skip
    with pytest.raises(ImageInputError, match=r"mixes slice orientations.*scout.dcm"):
        read(tmp_path / "s")


def test_missing_slice_named(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2, 4, 8, 10]))
    with pytest.raises(ImageInputError) as info:
        read(tmp_path / "s")
    message = str(info.value)
    assert str(tmp_path / "s") in message
    assert "missing slice" in message and "4.000 mm" in message and "8.000 mm" in message and "2.000 mm" in message
    assert "IM0003.dcm" in message and "IM0002.dcm" in message  # the files on either side of the gap


def test_non_uniform_spacing(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2, 4, 5.3, 7.3]))
    with pytest.raises(ImageInputError, match=r"non-uniform spacing"):
        read(tmp_path / "s")


def test_duplicate_positions(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2, 2, 4]))
    with pytest.raises(ImageInputError, match=r"same position"):
        read(tmp_path / "s")


def linear_values(k, position, row, column):
    """Stored values of a linear function of the LPS position: exact under trilinear interpolation."""
    j, i = np.meshgrid(np.arange(ROWS), np.arange(COLS), indexing="ij")
    points = (
        np.asarray(position)
        + i[..., None] * PIXEL_SPACING[1] * np.asarray(row)
        + j[..., None] * PIXEL_SPACING[0] * np.asarray(column)
    )
    return np.rint(field(points))


def field(points: np.ndarray) -> np.ndarray:
    return 1500 + 3.0 * points[..., 0] - 2.0 * points[..., 1] + 5.0 * points[..., 2]


def check_against_field(array: np.ndarray, meta: dict) -> None:
    fill = array.min()
    inside = array != fill
    assert inside.mean() > 0.4  # most of the grid lies inside the scanned region
    index = np.argwhere(inside)
    lps = (np.diag([-1, -1, 1, 1]) @ meta["affine"])[:3]
    points = index @ lps[:, :3].T + lps[:, 3]
    np.testing.assert_allclose(array[inside], field(points) - 1024, atol=0.6)


def test_gantry_tilt_refused_then_resampled(tmp_path):
    tilt = np.radians(15)
    row, column = (1.0, 0.0, 0.0), (0.0, np.cos(tilt), -np.sin(tilt))
    positions = [(0.0, 0.0, 2.0 * k) for k in range(6)]  # table moves along z, slices are tilted
    write_series(
        tmp_path / "s", positions, orientation=row + column, values=lambda k, p: linear_values(k, p, row, column)
    )
    with pytest.raises(ImageInputError, match=r"gantry tilt of 15\.00°.*resample=True"):
        read(tmp_path / "s")
    array, meta = read(tmp_path / "s", resample=True)
    assert meta["resampled"] is True and array.dtype == np.float32
    lps_direction = meta["source_direction_lps"]
    np.testing.assert_allclose(lps_direction[:, 2], [0, 0, 1], atol=1e-9)  # z follows the table
    np.testing.assert_allclose(meta["spacing"], [0.6, 0.8, 2.0], atol=1e-9)
    check_against_field(array, meta)


def test_uneven_spacing_resampled(tmp_path):
    row, column = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)
    positions = z_positions([0, 2, 4, 5.5, 7.5, 9.5])
    write_series(tmp_path / "s", positions, values=lambda k, p: linear_values(k, p, row, column))
    array, meta = read(tmp_path / "s", resample=True)
    assert array.shape == (COLS, ROWS, 5)  # 9.5 mm at the median gap of 2 mm: z = 0, 2, ..., 8
    check_against_field(array, meta)


def test_non_dicom_files_ignored_with_warning(tmp_path):
    write_series(tmp_path / "s", z_positions([0, 2, 4]))
    (tmp_path / "s" / "README.txt").write_text("exported by PACS")
    (tmp_path / "s" / ".DS_Store").write_bytes(b"\0" * 300)
    with pytest.warns(UserWarning, match=r"ignored 2 file\(s\).*README.txt"):
        array, _ = read(tmp_path / "s")
    assert array.shape[2] == 3


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_a_damaged_slice_is_named_wherever_it_lies(tmp_path, which):
    """A slice whose header is cut short (DICM preamble, unreadable header): the series is refused naming that file,
    first, middle or last slice alike (dropping it would segment a shorter volume); with skip_unreadable=True it is
    ignored with a warning, and a gap it leaves in the middle is then a missing slice."""
    write_series(tmp_path / "s", z_positions([0, 2, 4, 6, 8]))
    name = {"first": "IM0005.dcm", "middle": "IM0003.dcm", "last": "IM0001.dcm"}[which]  # files in reverse order
    damaged = tmp_path / "s" / name
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(ImageInputError, match=rf"{name}: is a damaged DICOM file: its header cannot be read"):
        read(tmp_path / "s")
    if which == "middle":
        with pytest.warns(UserWarning, match=name), pytest.raises(ImageInputError, match="missing slice"):
            read(tmp_path / "s", skip_unreadable=True)
    else:
        with pytest.warns(UserWarning, match=name):
            array, _ = read(tmp_path / "s", skip_unreadable=True)
        assert array.shape[2] == 4


def test_empty_and_non_dicom_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageInputError, match=r"empty.*is empty"):
        read(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no images")
    with pytest.raises(ImageInputError, match=r"holds no DICOM image files"):
        read(tmp_path / "text")


def test_load_image_does_not_fall_back_to_other_readers(tmp_path):
    """MONAI's LoadImage swallows read() errors and tries nibabel/pydicom; our refusal must still reach the user."""
    write_series(tmp_path / "s", z_positions([0, 2, 6, 8]))
    with pytest.raises(ImageInputError, match=r"missing slice"):
        LoadImage(reader=SimpleITKReader(), image_only=True)(tmp_path / "s")


def test_real_jpeg2000_series_with_empty_uids(sample_data):
    folder = sample_data / "totalsegmentator_ct_dicom" / "series"
    image = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=None)(folder)
    assert tuple(image.shape) == (512, 512, 5) and image.dtype.is_floating_point is False
    assert int(image.min()) == -1024  # air outside the patient, in HU
    np.testing.assert_allclose(image.meta["spacing"], [0.9765625, 0.9765625, 2.0])
    np.testing.assert_allclose(image.meta["source_origin_lps"], [-249.51171875, -437.51171875, -774.5])
    assert image.meta["SeriesInstanceUID"] == ""
    # Empty SOPInstanceUIDs are taken from the file meta header; the files are named after them.
    names = [Path(f).name for f in image.meta["source_files"]]
    assert image.meta["SOPInstanceUIDs"] == [n[len("CT.") :] for n in names]
    assert names[0].endswith("16577")  # z = -774.5 is the lowest slice
    volume = read_dicom_series(folder)
    np.testing.assert_array_equal(volume.array, image.numpy())
