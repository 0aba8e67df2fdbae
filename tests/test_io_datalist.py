"""``dataset_dir`` means the same everywhere: a folder, or a ``dataset.json`` whose relative paths are resolved against
the JSON's own folder; evaluation may score a ``test`` list with labels instead of the bundle's validation cases."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_unet.io import ImageInputError
from monai_unet.io.datalist import list_inputs, split_datalist


def _dataset(root):
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        (root / folder).mkdir(parents=True)
    for name in ("a", "b", "c"):
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), root / "imagesTr" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.eye(4)), root / "labelsTr" / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), root / "imagesTs" / "new.nii.gz")
    item = lambda n: {"image": f"imagesTr/{n}.nii.gz", "label": f"labelsTr/{n}.nii.gz"}  # noqa: E731
    split = root / "split.json"
    split.write_text(json.dumps({"training": [item("a"), item("b")], "validation": [item("c")]}))
    dataset = root / "dataset.json"
    dataset.write_text(json.dumps({"training": [item(n) for n in "abc"], "test": ["imagesTs/new.nii.gz"]}))
    return split, dataset


def test_a_folder_and_its_dataset_json_give_the_same_cases(tmp_path):
    split, dataset = _dataset(tmp_path / "data")
    for side in ("training", "validation"):
        by_folder = split_datalist(split, side, tmp_path / "data")
        by_json = split_datalist(split, side, dataset)
        assert by_folder == by_json and all(p.startswith(str(tmp_path)) for c in by_json for p in c.values())
    assert [c["image"] for c in split_datalist(split, "validation", dataset, test_list=True)] == [
        str(tmp_path / "data" / "imagesTr" / "c.nii.gz")
    ], "a test list without labels is not scored: the bundle's validation cases are"
    assert [c["case"] for c in list_inputs(dataset)] == ["new"], "inference reads the test list of the same JSON"
    with pytest.raises(ImageInputError, match=r"missing\.json: no such folder or dataset\.json"):
        split_datalist(split, "training", tmp_path / "missing.json")


def test_evaluation_scores_a_labelled_test_list_but_training_never_does(tmp_path):
    split, _ = _dataset(tmp_path / "data")
    held_out = tmp_path / "elsewhere" / "held_out.json"
    held_out.parent.mkdir()
    case = {"image": "../data/imagesTr/a.nii.gz", "label": "../data/labelsTr/a.nii.gz"}
    held_out.write_text(json.dumps({"test": [case]}))
    (scored,) = split_datalist(split, "validation", held_out, test_list=True)
    assert Path(scored["label"]).resolve() == tmp_path / "data" / "labelsTr" / "a.nii.gz"
    training = split_datalist(split, "training", held_out)  # the split, relative to the JSON's folder: no test case
    assert [c["image"] for c in training] == [str(held_out.parent / "imagesTr" / f"{n}.nii.gz") for n in "ab"]


def test_a_folder_of_files_holding_every_channel_is_one_case_per_file(tmp_path):
    """RGB pictures for a 3-channel bundle and 4D files for a 2-channel one are a case each; 3D files for a
    2-channel bundle must be named case_0000, case_0001, ..."""
    from PIL import Image

    pictures, volumes, plain = tmp_path / "rgb", tmp_path / "4d", tmp_path / "3d"
    for folder in (pictures, volumes, plain):
        folder.mkdir()
    for name in ("b", "a"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(pictures / f"{name}.png")
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), np.eye(4)), volumes / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), plain / f"{name}.nii.gz")
    from monai_unet.io.image_file import channels_in_file

    held = [channels_in_file(f / n) for f, n in ((pictures, "a.png"), (volumes, "a.nii.gz"), (plain, "a.nii.gz"))]
    assert held == [3, 2, 1] and channels_in_file(tmp_path / "missing.nii.gz") == 1
    (pictures / "._a.png").write_bytes(b"\x00\x05\x16\x07")  # macOS AppleDouble: not an image
    assert [c["case"] for c in list_inputs(pictures, channels=3)] == ["a", "b"]
    assert [c["image"] for c in list_inputs(volumes, channels=2)] == [
        str(volumes / "a.nii.gz"),
        str(volumes / "b.nii.gz"),
    ]
    with pytest.raises(ImageInputError, match="case_0000"):
        list_inputs(plain, channels=2)


def test_one_file_per_case_is_named_after_the_file(tmp_path):
    """``<case>`` of ``<case>_seg<ext>`` is the input file's name without its image suffix, also for nnU-Net's
    ``imagesTs`` (``la_003_0000``) and RGB pictures; only several channel files of one case share the case name."""
    for folder, names in (("nnunet", ["la_003_0000", "la_007_0000"]), ("numbered", ["slice_0000", "slice_0001"])):
        (tmp_path / folder).mkdir()
        for name in names:
            nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), tmp_path / folder / f"{name}.nii.gz")
        assert [c["case"] for c in list_inputs(tmp_path / folder)] == names
    (tmp_path / "rgb").mkdir()
    for name in ("polyp1_0000", "polyp2_0000"):
        Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "rgb" / f"{name}.png")
    assert [c["case"] for c in list_inputs(tmp_path / "rgb", channels=3)] == ["polyp1_0000", "polyp2_0000"]


def test_a_dataset_folder_gives_its_test_images(tmp_path):
    """An MSD/nnU-Net dataset folder (the ``dataset_dir`` a planned bundle points at) gives the cases in
    ``imagesTs/``; a folder with images of its own gives those."""
    for folder in ("imagesTr", "imagesTs"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    for folder, name in (("imagesTr", "train_0000"), ("imagesTs", "new_0000")):
        nib.save(
            nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), tmp_path / "data" / folder / f"{name}.nii.gz"
        )
    assert list_inputs(tmp_path / "data") == [
        {"image": str(tmp_path / "data" / "imagesTs" / "new_0000.nii.gz"), "case": "new_0000"}
    ]
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4)), tmp_path / "data" / "own.nii.gz")
    assert [c["case"] for c in list_inputs(tmp_path / "data")] == ["own"]
