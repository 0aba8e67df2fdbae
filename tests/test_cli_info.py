"""``monai-unet info`` on real files: what it reads, and the problem it names for each awkward DICOM case."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np

from monai_unet.cli.main import main

D2N = "dicom2nifti_testcases"

#: dicom2nifti's awkward cases (see ../shared/data/dicom2nifti_testcases/SOURCE.md) and the problem each has.
AWKWARD = {
    "failing/sliceincrement/001": "missing slice",
    "failing/slicecount/001": "only 2 slice(s)",
    "failing/sliceorientation/001": "mixes slice orientations",
    "ge/anatomical/001_single_slice": "only 1 slice(s)",
}


def run_info(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai_unet.cli.main", "info", *(str(a) for a in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_info_names_each_problem_and_reads_the_good_series(shared_data):
    root = shared_data / D2N
    good = root / "philips" / "anatomical" / "001"
    result = run_info("--json", *(root / case for case in AWKWARD), good)
    assert result.returncode == 2  # some input would be refused
    reports = {r["input"]: r for r in json.loads(result.stdout)}
    for case, problem in AWKWARD.items():
        report = reports[str(root / case)]
        assert report["problem"] and problem in report["problem"], (case, report["problem"])
        assert str(root / case) in report["problem"]
        assert len(report["series"]) == 1 and report["series"][0]["uid"]
    assert "4 of 5 inputs would be refused" in result.stderr.strip().splitlines()[-1]

    report = reports[str(good)]
    assert report["problem"] is None
    reference = nib.load(root / "philips" / "anatomical" / "001_ground_truth.nii.gz")  # dicom2nifti's conversion
    assert report["size"] == list(reference.shape)
    assert report["orientation"] == "".join(nib.aff2axcodes(reference.affine))
    np.testing.assert_allclose(report["spacing_mm"], reference.header.get_zooms(), atol=1e-3)
    data = np.asarray(reference.dataobj)
    assert report["intensity_range"] == [float(data.min()), float(data.max())]
    assert report["series"][0]["slices"] == 4 and report["series"][0]["modality"] == "MR"


def test_info_text_report_of_a_nifti_file(sample_data, capsys):
    flair = sample_data / "brats2013" / "brats_2013_pat0004_1" / "Flair_subtrMeanDivStd.nii.gz"
    assert main(["info", str(flair)]) == 0  # in-process: same code, no second torch import
    out = capsys.readouterr().out
    image = nib.load(flair)
    data = np.asarray(image.dataobj)
    assert f"{' x '.join(str(s) for s in image.shape)} voxels" in out
    assert f"orientation: {''.join(nib.aff2axcodes(image.affine))}" in out
    assert f"[{data.min():g}, {data.max():g}]" in out
    assert "problem: none" in out


def test_info_on_a_missing_path_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "no_such_scan.nii.gz"
    result = run_info(missing)
    assert result.returncode == 2
    assert result.stderr.strip() == f"monai-unet info: error: {missing}: no such file or folder"
