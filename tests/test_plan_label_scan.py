"""Datasets as people export them: nnU-Net v2's ``dataset.json`` named directly, folders without ``labels`` (the
values are read from the label files), label pictures as 2D sets ship them (grey masks stored as RGB, masks saved as
lossy JPEG: read as the one grey map they hold; colour palette masks as PASCAL VOC saves them: read as their
indices), and label files the planner cannot use (colour-coded maps, JPEG without declared values), refused with the
reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_in_process
from PIL import Image
from plan_datasets import _blob_label, write_msd_folder

from monai_unet.plan import DatasetError, measure, read_dataset


def _picture_folder(root: Path, values: tuple[int, ...], cases: int = 3, label_suffix: str = ".png") -> Path:
    """``imagesTr/`` grey PNGs and ``labelsTr/`` label maps holding ``values`` (concentric blobs), no dataset.json."""
    rng = np.random.default_rng(0)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(cases):
        classes = _blob_label((40, 48), rng, len(values))
        label = np.asarray(values, dtype=np.uint8)[classes]
        Image.fromarray((40 + 50 * classes + rng.normal(0, 5, classes.shape)).clip(0, 255).astype(np.uint8)).save(
            root / "imagesTr" / f"img{i}.png"
        )
        Image.fromarray(label).save(root / "labelsTr" / f"img{i}{label_suffix}", quality=75)
    return root


def test_nnunet_v2_dataset_json_named_directly_reads_its_folder(tmp_path):
    """nnU-Net v2 writes no ``training`` list: the cases are imagesTr/ and labelsTr/ beside the JSON."""
    folder = write_msd_folder(tmp_path)
    v2 = {
        "channel_names": {"0": "T1", "1": "T2"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": 4,
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(v2))
    by_json, by_folder = read_dataset(folder / "dataset.json"), read_dataset(folder)
    assert by_json.training == by_folder.training
    assert len(by_json.training) == 4 and all(len(c.images) == 2 for c in by_json.training)
    assert by_json.modality == ("T1", "T2")
    assert by_json.label_names == ["background", "lesion"] and not by_json.labels_found


def test_a_json_without_cases_or_folders_is_refused(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": {"background": 0, "x": 1}}))
    with pytest.raises(DatasetError, match=r"dataset.json: no 'training' list of cases and no imagesTr/"):
        read_dataset(path)


def test_labels_are_read_from_the_files_when_undeclared(tmp_path, capsys):
    folder = _picture_folder(tmp_path / "data", values=(0, 2, 5))
    dataset = read_dataset(folder)
    assert dataset.labels_found
    assert dataset.label_values == [0, 2, 5]
    assert dataset.label_names == ["background", "label 2", "label 5"]
    assert measure(dataset, progress=False).class_fractions()[2] > 0  # value 5 counted as class 2

    done = run_in_process(capsys, "plan", folder, "-o", tmp_path / "bundle", "--budget-min", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "no 'labels' in the dataset; the label files hold 0, 2, 5" in done.stderr
    plans = json.loads((tmp_path / "bundle" / "configs" / "plans.json").read_text())
    assert plans["labels_from"].startswith("the label files' values")
    assert plans["plan"]["label_values"] == [0, 2, 5]


def test_undeclared_labels_need_a_background_value(tmp_path):
    folder = _picture_folder(tmp_path, values=(1, 2))
    with pytest.raises(DatasetError, match=r"no label file holds value 0 to take as background \(values 1, 2\)"):
        read_dataset(folder)


def _as_rgb(path: Path, colours: tuple[int, int, int] = (1, 1, 1)) -> None:
    """Store the grey label ``path`` as an RGB picture (each channel the grey value times ``colours``)."""
    grey = np.asarray(Image.open(path)).astype(np.uint16)
    Image.fromarray(np.stack([grey * c for c in colours], axis=-1).clip(0, 255).astype(np.uint8)).save(path)


def test_jpeg_labels_are_read_as_the_nearest_declared_value(tmp_path, capsys):
    """Kvasir-SEG ships its masks as RGB JPEG: values between 0 and 255 along every edge, three equal channels."""
    reference = _picture_folder(tmp_path / "png", values=(0, 255))
    folder = _picture_folder(tmp_path / "jpeg", values=(0, 255), label_suffix=".jpg")
    for path in (folder / "labelsTr").iterdir():
        _as_rgb(path)
    declared = json.dumps({"labels": {"0": "background", "255": "polyp"}})
    for root in (reference, folder):
        (root / "dataset.json").write_text(declared)
    lossless, lossy = (measure(read_dataset(root), progress=False) for root in (reference, folder))
    assert lossy.label_decoding == {"colour": True, "lossy": True} and lossless.label_decoding == {}
    for exact, snapped in zip(lossless.cases, lossy.cases, strict=True):
        assert exact.class_voxels[1] > 100
        assert abs(snapped.class_voxels[1] - exact.class_voxels[1]) <= 0.05 * exact.class_voxels[1]

    done = run_in_process(capsys, "plan", folder, "-o", tmp_path / "bundle", "--budget-min", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "warning: label files saved as JPEG (lossy)" in done.stderr
    plans = json.loads((tmp_path / "bundle" / "configs" / "plans.json").read_text())
    assert plans["plan"]["label_decoding"] == {"colour": True, "lossy": True}
    assert "nearest declared one" in plans["plan"]["reasons"]["labels"]
    train = (tmp_path / "bundle" / "configs" / "train.json").read_text()
    assert "monai_unet.transforms.PictureLabeld" in train


def test_gif_labels_are_read_as_the_grey_levels_they_show(tmp_path):
    """DRIVE's vessel masks are palette GIFs: their values are the grey levels shown (0 and 255), as the PNGs'."""
    reference = _picture_folder(tmp_path / "png", values=(0, 255))
    folder = _picture_folder(tmp_path / "gif", values=(0, 255), label_suffix=".gif")
    declared = json.dumps({"labels": {"0": "background", "255": "vessel"}})
    for root in (reference, folder):
        (root / "dataset.json").write_text(declared)
    png, gif = (measure(read_dataset(root), progress=False) for root in (reference, folder))
    assert gif.label_decoding == {}
    assert [c.class_voxels for c in gif.cases] == [c.class_voxels for c in png.cases]


def _as_palette(path: Path, border: bool = False) -> None:
    """Store the label ``path`` as PASCAL VOC does: a colour palette PNG whose indices are the classes (``border``:
    VOC's index 255 around the objects)."""
    classes = np.asarray(Image.open(path))
    if border:
        classes = classes.copy()
        classes[0, :] = 255
    picture = Image.fromarray(classes, mode="P")
    picture.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192])
    picture.save(path)


def test_palette_labels_are_read_as_their_indices(tmp_path, capsys):
    """PASCAL VOC-style masks (colour palette PNG, index = class) plan as the grey maps of the same classes would:
    values found in the files, the same class voxels, and planned configs that load the labels as indices."""
    from monai.bundle import ConfigParser

    reference = _picture_folder(tmp_path / "grey", values=(0, 1, 2))
    folder = _picture_folder(tmp_path / "voc", values=(0, 1, 2))
    for path in (folder / "labelsTr").iterdir():
        _as_palette(path)
    dataset = read_dataset(folder)  # undeclared: the values are the indices, not the colours
    assert dataset.label_values == [0, 1, 2]
    grey, voc = measure(read_dataset(reference), progress=False), measure(dataset, progress=False)
    assert voc.label_decoding == {"palette": True} and grey.label_decoding == {}
    assert [c.class_voxels for c in voc.cases] == [c.class_voxels for c in grey.cases]

    done = run_in_process(capsys, "plan", folder, "-o", tmp_path / "bundle", "--budget-min", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    plans = json.loads((tmp_path / "bundle" / "configs" / "plans.json").read_text())
    assert "palette indices" in plans["plan"]["reasons"]["labels"]
    parser = ConfigParser()
    parser.read_config(tmp_path / "bundle" / "configs" / "train.json")
    parser["bundle_root"] = str(tmp_path / "bundle")
    steps = parser.get_parsed_content("preprocessing_steps")
    case = {"image": str(folder / "imagesTr" / "img0.png"), "label": str(folder / "labelsTr" / "img0.png")}
    for step in steps:
        case = step(case)
    expected = np.asarray(Image.open(reference / "labelsTr" / "img0.png")).T
    assert case["image"].shape[0] == 1 and case["label"].shape == (1, *expected.shape)
    np.testing.assert_array_equal(case["label"][0].numpy(), expected)


def test_a_palette_label_with_voc_borders_is_explained(tmp_path):
    folder = _picture_folder(tmp_path, values=(0, 1, 2))
    for path in (folder / "labelsTr").iterdir():
        _as_palette(path, border=True)
    (folder / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "a", "2": "b"}}))
    with pytest.raises(DatasetError, match=r"value\(s\) 255 not declared .*PASCAL VOC marks object borders"):
        measure(read_dataset(folder), progress=False)


def test_a_jpeg_label_without_declared_values_is_explained(tmp_path):
    folder = _picture_folder(tmp_path, values=(0, 255), label_suffix=".jpg", cases=12)
    with pytest.raises(DatasetError, match=r"JPEG compression is lossy.*declare the class values"):
        read_dataset(folder)


def test_a_grey_label_stored_as_rgb_is_read_as_grey(tmp_path):
    folder = _picture_folder(tmp_path, values=(0, 255))
    _as_rgb(folder / "labelsTr" / "img1.png")
    dataset = read_dataset(folder)  # the undeclared values are read from its grey channel
    assert dataset.label_values == [0, 255]
    fingerprint = measure(dataset, progress=False)
    assert fingerprint.label_decoding == {"colour": True}
    assert fingerprint.cases[1].class_voxels[1] > 100


def test_a_colour_coded_label_is_refused_with_the_reason(tmp_path):
    folder = _picture_folder(tmp_path, values=(0, 255))
    _as_rgb(folder / "labelsTr" / "img1.png", colours=(1, 0, 0))  # red on black: which value is red?
    with pytest.raises(DatasetError, match=r"img1.png: its colour channels differ .*colour-coded map"):
        read_dataset(folder)  # found while reading the undeclared values
    (folder / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "255": "cell"}}))
    with pytest.raises(DatasetError, match=r"case img1: .*img1.png: its colour channels differ"):
        measure(read_dataset(folder), progress=False)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_one_bit_label_is_explained(tmp_path, suffix):
    """PIL shows a 1-bit mask as 0/1, but it reads as 0/255; the refusal of the undeclared 255 says so."""
    folder = _picture_folder(tmp_path, values=(0, 1), label_suffix=suffix)
    for path in (folder / "labelsTr").iterdir():
        Image.fromarray(np.asarray(Image.open(path)) > 0).save(path)  # a boolean array saves as mode "1"
    (folder / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "lesion"}}))
    with pytest.raises(
        DatasetError, match=r"holds value\(s\) 255 not declared .*a 1-bit picture, which reads as 0 and 255"
    ):
        measure(read_dataset(folder), progress=False)


def test_grey_and_colour_pictures_mixed_are_explained(tmp_path):
    folder = _picture_folder(tmp_path, values=(0, 1))
    picture = folder / "imagesTr" / "img2.png"
    Image.open(picture).convert("RGB").save(picture)
    (folder / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "lesion"}}))
    with pytest.raises(DatasetError, match=r"case img2: 2D with 3 channel\(s\).*grey and colour pictures mixed"):
        measure(read_dataset(folder), progress=False)


def test_undeclared_float_labels_with_fractions_are_refused(tmp_path):
    """A float label file holding 0.5 (a resampled mask, a probability map) is not a class map."""
    import nibabel as nib

    from monai_unet.errors import InputError
    from monai_unet.plan.label_scan import found_labels

    label = np.zeros((6, 5, 4), dtype=np.float32)
    label[2:4, 1:3, 1:3] = 1.0
    label[2, 1, 1] = 0.5
    nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "case.nii.gz")
    with pytest.raises(InputError, match=r"case.nii.gz: holds non-integer values \(e.g. 0.5\)"):
        found_labels([tmp_path / "case.nii.gz"], tmp_path, progress=False)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_wide_unsigned_label_files_are_read_for_their_values(tmp_path, dtype):
    """ITK-SNAP and many converters write uint16 label maps: their values are read and counted like uint8 ones."""
    import nibabel as nib

    from monai_unet.plan.label_scan import found_labels

    paths = []
    for i, values in enumerate(((0, 7), (0, 1000))):
        label = np.zeros((6, 5, 4), dtype=dtype)
        label[2:4, 1:3, 1:3] = values[1]
        paths.append(tmp_path / f"case{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), paths[-1])
    assert found_labels(paths, tmp_path, progress=False) == {"0": "background", "7": "label 7", "1000": "label 1000"}
