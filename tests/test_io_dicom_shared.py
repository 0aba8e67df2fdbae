"""The reader against real references in ``../shared/data`` (skipped where it is absent).

Every dicom2nifti test case either matches its reference NIfTI (voxels equal, affine within 1e-3 mm, compared
after bringing our volume to the reference's axis order and directions by flips and permutations only) or is
refused with the error that names its problem. ``python tests/test_io_dicom_shared.py`` prints the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import NibabelReader
from monai.transforms import LoadImage
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform
from reading import read_checking_header

from monai_unet.io import ImageInputError, SimpleITKReader

D2N = "dicom2nifti_testcases"
J2K_REFERENCE = "generic/compressed_j2k/001_ground_truth.nii.gz"  # identical for the four codecs (SOURCE.md)

# (case, reader options, expected: "match" or a phrase of the refusal)
CASES = [
    ("generic/anatomical/001", {}, "match"),
    ("generic/compressed_j2k/001", {}, "match"),
    ("generic/compressed_jpeg/001", {}, "match"),
    ("generic/compressed_jpegls/001", {}, "match"),
    ("generic/compressed_rle/001", {}, "match"),
    ("siemens/anatomical/001", {}, "match"),
    ("philips/anatomical/001", {}, "match"),
    ("ge/anatomical/001", {}, "match"),
    ("ge/anatomical/001_single_slice", {}, "only 1 slice(s)"),
    ("hitachi/anatomical/001", {}, "match"),
    ("siemens_multiframe/anatomical/001", {}, "match"),
    ("philips_enhanced/anatomical/001", {}, "match"),
    ("hyperfine/anatomical/001", {}, "match"),
    ("failing/sliceincrement/001", {}, "missing slice"),
    ("failing/slicecount/001", {}, "only 2 slice(s)"),
    ("failing/slicecount/001", {"min_slices": 2}, "match"),
    ("failing/sliceorientation/001", {}, "mixes slice orientations"),
]


def reference_path(root: Path, case: str) -> Path:
    return root / D2N / (J2K_REFERENCE if "compressed_" in case else f"{case}_ground_truth.nii.gz")


def on_reference_axes(array: np.ndarray, affine: np.ndarray, reference_affine: np.ndarray):
    """Flip/permute ``array`` (no resampling) to the reference's axis order; returns (array, affine)."""
    transform = ornt_transform(io_orientation(affine), io_orientation(reference_affine))
    return apply_orientation(array, transform), affine @ inv_ornt_aff(transform, array.shape)


def compare_case(root: Path, case: str, options: dict) -> tuple[str, str]:
    """("match" | "refused" | "MISMATCH", detail) for one dicom2nifti case."""
    try:
        array, meta = read_checking_header(root / D2N / case, **options)
    except ImageInputError as error:
        return "refused", error.problem
    reference = nib.load(reference_path(root, case))
    expected = np.asanyarray(reference.dataobj)
    expected = expected.reshape(expected.shape[:3])  # philips_enhanced reference is (x, y, z, 1)
    ours, affine = on_reference_axes(np.asarray(array), meta["affine"], reference.affine)
    if ours.shape != expected.shape:
        return "MISMATCH", f"shape {ours.shape} vs {expected.shape}"
    affine_error = float(np.abs(affine - reference.affine).max())
    if np.issubdtype(expected.dtype, np.floating):  # rescaled values: equal up to float32 rounding
        voxels_equal = np.allclose(ours, expected, rtol=1e-6, atol=0)
    else:
        voxels_equal = np.array_equal(ours, expected)
    detail = (
        f"{ours.shape}, {array.dtype}, voxels {'equal' if voxels_equal else 'DIFFER'}, "
        f"affine max error {affine_error:.1e} mm"
    )
    return ("match" if voxels_equal and affine_error < 1e-3 else "MISMATCH"), detail


@pytest.mark.parametrize(("case", "options", "expected"), CASES, ids=[f"{c}{o or ''}" for c, o, _ in CASES])
def test_dicom2nifti_case(shared_data, case, options, expected):
    outcome, detail = compare_case(shared_data, case, options)
    print(f"{case} {options or ''}: {outcome}: {detail}")
    if expected == "match":
        assert outcome == "match", detail
    else:
        assert outcome == "refused" and expected in detail, detail


def test_totalsegmentator_series_lines_up_with_its_segmentation(shared_data):
    folder = shared_data / "totalsegmentator_examples" / "ct_dicom"
    image = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=None)(folder / "series")
    segmentation = nib.load(folder / "example_seg_dicom.nii.gz")
    labels, affine = on_reference_axes(np.asarray(segmentation.dataobj), segmentation.affine, image.affine.numpy())
    assert labels.shape == tuple(image.shape)
    np.testing.assert_allclose(affine, image.affine.numpy(), atol=1e-3)
    hu = image.numpy()
    # On the same grid, the labels sit on the right tissue (SOURCE.md: liver ~89 HU, aorta ~177 HU, humerus bone).
    assert 60 < hu[labels == 5].mean() < 120  # liver
    assert 140 < hu[labels == 52].mean() < 220  # aorta (contrast)
    assert hu[np.isin(labels, [69, 70])].mean() > 400  # humeri


def test_enhanced_ct_multiframe_affine(shared_data):
    path = shared_data / "pydicom_data_selected" / "eCT_Supplemental.dcm"
    array, meta = read_checking_header(path, min_slices=2)  # a 2-frame sample
    assert array.shape == (512, 512, 2) and meta["frame_order"] == [1, 0]
    # IOP [-1,0,0, 0,1,0] → normal (0,0,-1): z runs from frame 2 (z = -149) to frame 1 (z = -159).
    expected_lps = np.array([[-0.388672, 0, 0, 99.5], [0, 0.388672, 0, -301.5], [0, 0, -10.0, -149.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(meta["affine"], np.diag([-1, -1, 1, 1]) @ expected_lps, atol=1e-6)
    assert array.min() >= -1024  # RescaleIntercept -1024 applied


def test_dicom_seg_parses(shared_data):
    highdicom = pytest.importorskip("highdicom")
    seg = highdicom.seg.segread(shared_data / "pydicom_data_selected" / "liver.dcm")
    assert seg.SegmentationType == "BINARY" and seg.number_of_segments == 1
    assert seg.get_segment_description(1).SegmentLabel.lower().startswith("liver")
    assert seg.pixel_array.shape == (3, 512, 512) and seg.pixel_array.any()


REAL_NIFTI = [
    "totalsegmentator_examples/mr_nifti/example_mr_sm.nii.gz",  # int16, LPS-oriented affine
    "brats2013_deepmedic_subset/brats_2013_pat0004_1/OTMultiClass.nii.gz",  # float32, qform and sform
]


@pytest.mark.parametrize("name", REAL_NIFTI)
def test_real_nifti_equals_nibabel_reader(shared_data, name):
    ours = LoadImage(reader=SimpleITKReader(), image_only=True, dtype=None)(shared_data / name)
    theirs = LoadImage(reader=NibabelReader(), image_only=True, dtype=None)(shared_data / name)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), theirs.affine.numpy(), atol=1e-5)


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
    print("| case | options | reference | outcome | detail |\n|---|---|---|---|---|")
    for case, options, _ in CASES:
        outcome, detail = compare_case(root, case, options)
        ref = reference_path(root, case)
        print(f"| `{case}` | {options or ''} | {ref.name if ref.exists() else 'none'} | {outcome} | {detail} |")
