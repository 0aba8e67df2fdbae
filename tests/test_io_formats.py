"""The one table of output formats: every caller's choice of format comes from it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from monai_unet.cli.segment import LABEL_EXTENSIONS, output_ext_for, register
from monai_unet.errors import UsageError
from monai_unet.io.formats import LABEL_FORMATS, OUTPUT_FORMATS, find_format


@pytest.mark.parametrize(
    "name,key",
    [
        ("case_seg.nii.gz", ".nii.gz"),
        ("CASE_SEG.NII", ".nii"),
        ("tumour.seg.nrrd", ".seg.nrrd"),
        ("slice07.png", ".png"),
        ("slice07_prob.tiff", ".tif"),
        ("ct_seg", "dicomseg"),
        ("dicomseg", "dicomseg"),
        (".nii.gz", ".nii.gz"),
    ],
)
def test_a_name_or_key_selects_one_row(name, key):
    assert find_format(name).key == key


@pytest.mark.parametrize("name", ["scan.nrrd", "scan.mha", "slice.dcm", "notes.txt"])
def test_other_suffixes_name_no_output_format(name):
    assert find_format(name) is None
    with pytest.raises(UsageError, match="cannot tell the output format"):
        output_ext_for(Path(name))


def test_an_existing_folder_is_a_dicom_seg_even_with_a_dot(tmp_path):
    folder = tmp_path / "study.v2"
    folder.mkdir()
    assert find_format(folder).folder


def test_the_command_line_offers_exactly_the_table_label_formats():
    assert set(LABEL_EXTENSIONS) | {"dicomseg"} == set(LABEL_FORMATS)
    assert {row.key for row in OUTPUT_FORMATS if row.probabilities} == {".nii.gz", ".nii", ".tif"}
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "-i", "in", "-o", "out", "--bundle", "b", "--format", ".tif"])
    args = parser.parse_args(["segment", "-i", "in", "-o", "out", "--bundle", "b", "--format", ".seg.nrrd"])
    assert args.format == ".seg.nrrd"
