"""``monai-unet plan``: datasets read and refused, plans derived, bundles written that the stock runner accepts."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_caching import assert_caches_every_deterministic_step
from cli_in_process import run_in_process
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.transforms import Compose
from PIL import Image
from plan_datasets import (
    write_membrane_dataset,
    write_msd_folder,
    write_nifti_dataset,
    write_png_dataset,
    write_rgb_dataset,
    write_sparse_dataset,
)

from monai_unet.metrics import region_maps
from monai_unet.plan import DatasetError, make_plan, measure, read_dataset
from monai_unet.plan.bundle import write_bundle
from monai_unet.plan.calibrate import StepTiming
from monai_unet.plan.configs import topology_guards
from monai_unet.plan.inference_choice import mirror_check_axes
from monai_unet.plan.recipe import SELECTION_METRICS
from monai_unet.plan.record import MIN_GAIN, read_plan
from monai_unet.plan.sampling import choose_sampling

#: The model-zoo README sections a bundle's docs/README.md carries (as second-level headings, in this order).
MODEL_ZOO_SECTIONS = ("Overview", "Data", "Training", "Performance", "System configuration", "Limitations", "License")


def fixed_timer(network_kwargs, patch, batch, device="cpu", precision="auto", loss=None):
    """A machine-independent stand-in for the calibration: cost ∝ voxels × batch × width²."""
    work = math.prod(patch) * batch * network_kwargs["features"][0] ** 2
    return StepTiming(train_step_s=work * 2e-8, forward_s=work * 5e-9 / batch)


@pytest.fixture
def fixed_step_timing(monkeypatch):
    """``monai-unet plan`` run in this process with :func:`fixed_timer` standing in for the step calibration."""
    import monai_unet.plan as planner

    make_plan_timed = planner.make_plan
    monkeypatch.setattr(planner, "make_plan", lambda *a, **k: make_plan_timed(*a, **{**k, "timer": fixed_timer}))


def _plan(source, budget=20.0, fold=0):
    dataset = read_dataset(source)
    fingerprint = measure(dataset, progress=False)
    return dataset, fingerprint, make_plan(dataset, fingerprint, budget, fold=fold, timer=fixed_timer)


# --------------------------------------------------------------------------------------------------- reading
def test_png_dataset_labels_map_background_by_name(tmp_path):
    dataset = read_dataset(write_png_dataset(tmp_path))
    assert dataset.label_values == [255, 0]  # the class named "background" is class 0 whatever its value
    assert dataset.label_names == ["background", "membrane"]
    assert [c.name for c in dataset.training][:2] == ["em00", "em01"]
    assert dataset.terms == "CC0 (synthetic test data)"


def test_msd_folder_groups_channels(tmp_path):
    dataset = read_dataset(write_msd_folder(tmp_path))
    assert len(dataset.training) == 4
    assert all(len(c.images) == 2 for c in dataset.training)
    assert dataset.training[0].images[0].name == "pat0_0000.nii.gz"
    assert dataset.modality == ("T1", "T2")


def test_time_points_of_one_patient_share_a_fold(tmp_path):
    from monai_unet.plan.dataset import group_of

    assert group_of("patient001_frame01") == group_of("patient001_frame02") == "patient001"
    assert group_of("la_003") == "la_003"
    assert group_of("brats_2013_pat0004_1") == "brats_2013_pat0004_1"


# ------------------------------------------------------------------------------------------------ bad datasets
def _dataset_json(root: Path, **changes) -> Path:
    path = write_nifti_dataset(root, cases=3)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def test_missing_file_names_the_case(tmp_path):
    path = _dataset_json(tmp_path)
    (tmp_path / "imagesTr" / "case1.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"case case1.*case1.nii.gz does not exist"):
        read_dataset(path)


def test_label_on_another_grid_is_refused(tmp_path):
    path = _dataset_json(tmp_path)
    label = tmp_path / "labelsTr" / "case2.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((24, 20, 15), np.uint8), np.eye(4)), label)
    with pytest.raises(
        DatasetError, match=r"case case2: image .* is \(24, 20, 16\) voxels but label .* \(24, 20, 15\)"
    ) as refused:
        measure(read_dataset(path), progress=False)
    assert "one slice thick" not in str(refused.value)


def test_a_slice_stored_as_3d_beside_a_2d_label_is_explained(tmp_path):
    """Images exported as (x, y, 1) NIfTI beside masks saved as 2D: refused, saying what differs."""
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        label = (rng.random((24, 20)) > 0.5).astype(np.uint8)
        image = nib.Nifti1Image(label[..., None].astype(np.float32), np.eye(4))
        nib.save(image, tmp_path / "imagesTr" / f"c{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "labelsTr" / f"c{i}.nii.gz")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "cell"}}))
    with pytest.raises(DatasetError, match=r"\(24, 20, 1\) voxels but label .* \(24, 20\).*one slice thick"):
        measure(read_dataset(tmp_path), progress=False)


def test_label_with_shifted_origin_is_refused(tmp_path):
    path = _dataset_json(tmp_path)
    label = tmp_path / "labelsTr" / "case0.nii.gz"
    image = nib.load(label)
    affine = image.affine.copy()
    affine[0, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), affine), label)
    with pytest.raises(DatasetError, match=r"case case0: .*different origin, spacing or direction"):
        measure(read_dataset(path), progress=False)


def test_undeclared_label_value_is_refused(tmp_path):
    path = _dataset_json(tmp_path, labels={"0": "background", "1": "outer"})
    with pytest.raises(DatasetError, match=r"case case0: label .* holds value\(s\) 2 not declared"):
        measure(read_dataset(path), progress=False)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.int32])
def test_integer_labels_map_to_classes_as_float_labels_do(dtype):
    """The value table of integer label maps gives the sorted search's classes and counts (float label files);
    merged values count as one class, and an undeclared value is reported by both."""
    from monai_unet.plan.fingerprint import _classes

    rng = np.random.default_rng(0)
    label = rng.choice(np.array([0, 1, 2, 4]), size=(30, 20, 7), p=[0.7, 0.1, 0.1, 0.1])
    lookup = {0: 0, 1: 1, 2: 1, 4: 2}
    table, table_voxels, none = _classes(label.astype(dtype), lookup, 3)
    search, search_voxels, _ = _classes(label.astype(np.float32), lookup, 3)
    assert none == [] and table.dtype == np.uint8
    np.testing.assert_array_equal(table, search)
    assert (
        table_voxels
        == search_voxels
        == [int((label == 0).sum()), int(np.isin(label, [1, 2]).sum()), int((label == 4).sum())]
    )
    assert _classes(label.astype(dtype), {0: 0, 1: 1, 2: 1}, 2)[2] == [4.0]
    assert _classes(label.astype(np.float32), {0: 0, 1: 1, 2: 1}, 2)[2] == [4.0]


def test_nnunet_style_labels_merge_values_into_one_class(tmp_path):
    """``{"background": 0, "tumour": [1, 2]}`` (nnU-Net v2's name → values): one foreground class whose voxels,
    thickness and training labels count both values; the bundle maps 1 and 2 to class 1 in every config."""
    merged = _dataset_json(tmp_path / "merged", labels={"background": 0, "tumour": [1, 2]})
    separate = read_dataset(_dataset_json(tmp_path / "separate"))
    dataset, fingerprint, plan = _plan(merged)
    assert dataset.label_names == ["background", "tumour"] and dataset.label_values == [0, [1, 2]]
    assert plan.num_classes == 2 and plan.label_values == [0, [1, 2]]
    three = measure(separate, progress=False)
    for two_classes, three_classes in zip(fingerprint.cases, three.cases, strict=True):
        assert two_classes.class_voxels == [three_classes.class_voxels[0], sum(three_classes.class_voxels[1:])]
    bundle = write_bundle(tmp_path / "bundle", plan, dataset, fingerprint, "merged")
    for config in ("train.json", "evaluate.json"):
        text = (bundle / "configs" / config).read_text()
        assert '"orig_labels": [\n' in text or '"orig_labels": [0, 1, 2]' in text, config
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser["bundle_root"] = str(bundle)
    preprocess = Compose(parser.get_parsed_content("preprocessing_steps"))
    case = dataset.training[0]
    sample = preprocess({"image": str(case.images[0]), "label": str(case.label)})
    raw = np.asarray(nib.load(case.label).dataobj)
    assert set(np.unique(raw)) == {0, 1, 2} and set(np.unique(sample["label"].numpy())) == {0, 1}
    assert "| 1 | 1, 2 | tumour |" in (bundle / "docs" / "README.md").read_text()


def test_msd_labels_sharing_a_name_merge_and_bad_values_are_refused(tmp_path):
    path = _dataset_json(tmp_path, labels={"0": "background", "1": "organ", "2": "organ"})
    assert read_dataset(path).labels == {"background": (0,), "organ": (1, 2)}
    assert read_dataset(path).regions == {}
    path.write_text(json.dumps({**json.loads(path.read_text()), "labels": {"background": 0, "a": "one"}}))
    with pytest.raises(DatasetError, match=r"label 'a' in 'labels' must give an integer value or a list"):
        read_dataset(path)


@pytest.mark.parametrize(
    "labels,classes,regions",
    [
        (  # BraTS in nnU-Net v2 (Dataset137): nested regions, one value each
            {"background": 0, "whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": 3},
            {
                "background": (0,),
                "whole tumour (label 1)": (1,),
                "tumour core (label 2)": (2,),
                "enhancing tumour": (3,),
            },
            {"whole tumour": (1, 2, 3), "tumour core": (2, 3), "enhancing tumour": (3,)},
        ),
        (  # KiTS23: the tumour is a region of one value inside "masses"; the cyst (3) is what is left of it
            {"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumour": 2},
            {"background": (0,), "kidney (label 1)": (1,), "tumour": (2,), "masses (label 3)": (3,)},
            {"kidney": (1, 2, 3), "masses": (2, 3), "tumour": (2,)},
        ),
        (  # two values in the same regions are one class
            {"background": 0, "organ": [1, 2, 3], "lesion": 3},
            {"background": (0,), "organ (labels 1, 2)": (1, 2), "lesion": (3,)},
            {"organ": (1, 2), "lesion": (2,)},
        ),
    ],
    ids=["brats", "kits23", "merged-atom"],
)
def test_overlapping_nnunet_regions_become_classes_and_unions(tmp_path, labels, classes, regions):
    """nnU-Net v2's region labels: one class per set of values in the same regions, each region a union of them."""
    dataset = read_dataset(_dataset_json(tmp_path, labels=labels, regions_class_order=[1, 2, 3]))
    assert dataset.labels == classes and dataset.regions == regions


def test_a_region_may_not_share_the_background(tmp_path):
    path = _dataset_json(tmp_path, labels={"background": [0, 1], "organ": [1, 2], "core": 2})
    with pytest.raises(
        DatasetError, match=r"dataset.json: label value\(s\) \[1\] are listed under both the background"
    ):
        read_dataset(path)


def test_a_region_bundle_trains_and_evaluates_each_region(tmp_path, capsys, fixed_step_timing):
    """Region labels end to end: planned (its step timing stood in for), trained by the stock runner with the mean
    Dice of the regions selecting the model, and ``evaluate`` scores each region: the one-class region's Dice is that
    class's, case by case."""
    source = _dataset_json(tmp_path / "data", labels={"background": 0, "organ": [1, 2], "core": 2})
    bundle = tmp_path / "bundle"
    planned = run_in_process(capsys, "plan", source, "-o", bundle, "--budget-min", "1", "--no-progress")
    assert planned.returncode == 0, planned.stderr[-2000:]
    plans = json.loads((bundle / "configs" / "plans.json").read_text())
    assert plans["regions"] == {"organ": [1, 2], "core": [2]}
    assert plans["plan"]["label_names"] == ["background", "organ (label 1)", "core"]
    assert "| organ | organ (label 1), core |" in (bundle / "docs" / "README.md").read_text()
    _cli("train", "--bundle", str(bundle), "budget_minutes=0.1", "epoch_length=2")
    trained = json.loads((bundle / "configs" / "plans.json").read_text())["training"]
    (run,) = (bundle / "runs").iterdir()
    history = [r.split(",") for r in (run / "validation_history.csv").read_text().splitlines()]
    column = history[0].index("val_mean_region_dice")
    assert trained["best_metric"] == pytest.approx(max(float(r[column]) for r in history[1:])), "the regions select"
    _cli("evaluate", "--bundle", str(bundle))
    summary = json.loads((bundle / "eval" / "metrics_summary.json").read_text())["metrics"]
    assert 0.0 <= summary["val_region_dice_organ"] <= 1.0 and "val_region_dice_core" in summary
    assert summary["val_mean_region_dice"] == pytest.approx(
        np.nanmean([summary["val_region_dice_organ"], summary["val_region_dice_core"]]), abs=1e-6
    )

    def per_case(name: str, column: int) -> dict[str, float]:
        rows = [r.split(",") for r in (bundle / "eval" / f"{name}_raw.csv").read_text().splitlines()[1:] if r]
        return {r[0]: float(r[column]) for r in rows}

    core = per_case("val_region_dice_core", 1)  # columns: the case, then foreground classes (the region's one)
    assert core and core == pytest.approx(per_case("val_mean_dice", 2), nan_ok=True)  # class 2 is the core


@pytest.mark.parametrize(
    "labels,message",
    [
        ({"background": 0, "organ": 1, "ignore": 1}, r"'ignore' \(voxels nobody annotated\) must be one value above"),
        ({"background": 0, "organ": 2, "ignore": 1}, r"must be one value above every other label value \(got \[1\]"),
        ({"background": 0, "organ": 1, "ignore": [2, 3]}, r"must be one value above"),
        ({"background": 0, "ignore": 1}, r"names only one class \('background'\); there is nothing to segment"),
    ],
)
def test_a_bad_ignore_label_is_refused(tmp_path, labels, message):
    with pytest.raises(DatasetError, match=message):
        read_dataset(_dataset_json(tmp_path, labels=labels))


def test_sparse_annotation_is_measured_on_the_annotated_voxels_only(tmp_path):
    """The ignore label is no class: its voxels are not counted, and its edges are no class's boundary (a class
    measured between unannotated slices keeps its thickness)."""
    sparse = read_dataset(write_sparse_dataset(tmp_path / "sparse", cases=3, annotated_every=1))  # all annotated
    dense = read_dataset(_dataset_json(tmp_path / "dense"))
    assert sparse.labels == dense.labels and sparse.ignore_value == 3 and dense.ignore_value is None
    assert [c.class_voxels for c in measure(sparse, progress=False).cases] == [
        c.class_voxels for c in measure(dense, progress=False).cases
    ]
    thinned = read_dataset(write_sparse_dataset(tmp_path / "thinned", cases=3, annotated_every=2))
    fp = measure(thinned, progress=False)
    for case, source in zip(fp.cases, thinned.training, strict=True):
        raw = np.asarray(nib.load(source.label).dataobj)
        assert case.class_voxels == [int((raw == c).sum()) for c in range(3)], "ignored voxels counted in no class"
    dense_fp = measure(dense, progress=False)
    for thin, full in zip(fp.cases, dense_fp.cases, strict=True):
        # counting the unannotated neighbours would make every voxel of a kept slice a boundary: thickness 2.0
        assert all(t > 2.0 for t in thin.class_thickness[1:]), thin.class_thickness
        assert thin.class_thickness[2] == pytest.approx(full.class_thickness[2], rel=0.35)


def test_sparse_annotation_trains_and_scores_only_annotated_voxels(tmp_path, capsys, fixed_step_timing):
    """nnU-Net v2's ignore label end to end: the loss leaves it out, training and ``evaluate`` run, and each case's
    evaluated Dice is the Dice of ``infer``'s label map on the annotated voxels alone."""
    source = write_sparse_dataset(tmp_path / "data")
    bundle = tmp_path / "bundle"
    planned = run_in_process(capsys, "plan", source, "-o", bundle, "--budget-min", "1", "--no-progress")
    assert planned.returncode == 0, planned.stderr[-2000:]
    plan = json.loads((bundle / "configs" / "plans.json").read_text())["plan"]
    assert plan["ignore_value"] == 3 and plan["loss"]["ignore_index"] == 3 and plan["num_classes"] == 3
    loss = json.loads((bundle / "configs" / "train.json").read_text())["loss"]
    assert loss["_target_"] == "monai_unet.losses.IgnoreLabelDiceCELoss" and loss["ignore_index"] == 3
    assert "Label value 3 marks voxels nobody annotated" in (bundle / "docs" / "README.md").read_text()
    _cli("train", "--bundle", str(bundle), "budget_minutes=0.1", "epoch_length=2")
    _cli("evaluate", "--bundle", str(bundle))
    validation = [read_dataset(source).training[i] for i in range(5)]
    validation = [
        c
        for c in validation
        if c.name in json.loads((bundle / "configs" / "plans.json").read_text())["plan"]["split"]["validation"]
    ]
    held_out = tmp_path / "validation.json"
    held_out.write_text(json.dumps({"test": [{"image": str(c.images[0])} for c in validation]}))
    out = tmp_path / "out"
    _cli("infer", "--bundle", str(bundle), "--dataset-dir", str(held_out), "--output-dir", str(out))
    rows = [r.split(",") for r in (bundle / "eval" / "val_mean_dice_raw.csv").read_text().splitlines()[1:] if r]
    evaluated = {Path(r[0]).name: [float(v) for v in r[1:3]] for r in rows}
    assert len(evaluated) == len(validation) >= 1
    for case in validation:
        truth = np.asarray(nib.load(case.label).dataobj)
        predicted = np.asarray(nib.load(out / f"{case.name}_seg.nii.gz").dataobj)
        annotated = truth != 3
        expected = []
        for c in (1, 2):
            a, b = (predicted == c) & annotated, (truth == c) & annotated
            expected.append(2 * (a & b).sum() / (a.sum() + b.sum()) if a.sum() + b.sum() else float("nan"))
        assert evaluated[case.images[0].name] == pytest.approx(expected, abs=1e-4, nan_ok=True), case.name


def test_region_maps_score_the_union_of_classes():
    """Regions' Dice through ``region_maps`` and MONAI's ``DiceMetric``: each region's equals the Dice of its class
    union, and for several regions at once the metric gives each of them (their mean selects the model)."""
    rng = np.random.default_rng(0)
    pred, label = (torch.as_tensor(rng.integers(0, 4, (1, 9, 8, 7))) for _ in range(2))
    one_hot = [torch.nn.functional.one_hot(x[0], 4).movedim(-1, 0).float() for x in (pred, label)]
    regions = [[1, 2, 3], [2, 3], [3]]
    expected = []
    for classes in regions:
        maps = region_maps(([one_hot[0]], [one_hot[1]]), [classes])
        dice = DiceMetric(include_background=False)(torch.stack(maps[0]), torch.stack(maps[1]))
        a, b = np.isin(pred.numpy(), classes), np.isin(label.numpy(), classes)
        expected.append(2 * (a & b).sum() / (a.sum() + b.sum()))
        assert float(dice) == pytest.approx(expected[-1], rel=1e-6)
    maps = region_maps(([one_hot[0]], [one_hot[1]]), regions)
    each = DiceMetric(include_background=False)(torch.stack(maps[0]), torch.stack(maps[1]))
    assert each[0].tolist() == pytest.approx(expected, rel=1e-6)


NEOPLASM = {
    "category": ["SCT", "49755003", "Morphologically Abnormal Structure"],
    "type": ["SCT", "108369006", "Neoplasm"],
}


def test_terminology_from_the_dataset_reaches_the_bundle_metadata(tmp_path):
    liver = {"category": ["SCT", "91723000", "Anatomical Structure"], "type": ["SCT", "10200004", "Liver"]}
    source = _dataset_json(tmp_path / "data", terminology={"1": liver, "INNER": NEOPLASM})  # by value, by name
    names = read_dataset(source).label_names
    assert names[1:] == ["outer", "inner"], "the fixture's class names, which the keys above refer to"
    bundle, _ = _write(source, tmp_path)
    pred = json.loads((bundle / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    assert pred["terminology"] == {"1": liver, "2": NEOPLASM}


@pytest.mark.parametrize(
    "terminology,message",
    [
        ({"background": NEOPLASM}, r"'background', which is not a foreground class of 'labels' \(outer, inner\)"),
        ({"three": NEOPLASM}, "not a foreground class"),
        ({"1": {"type": NEOPLASM["type"]}}, r"terminology\['1'\]: an entry needs 'category' and 'type'"),
        ({"1": {**NEOPLASM, "type": "Neoplasm"}}, "a code is \\[scheme, value, meaning\\]"),
        (["SCT"], "'terminology' must map class names to codes"),
    ],
    ids=["background", "unknown", "no-category", "bare-string", "list"],
)
def test_bad_terminology_is_refused_naming_the_file(tmp_path, terminology, message):
    source = _dataset_json(tmp_path, terminology=terminology)
    with pytest.raises(DatasetError, match=message) as error:
        read_dataset(source)
    assert str(source) in str(error.value)


def test_channel_count_must_agree(tmp_path):
    path = _dataset_json(tmp_path)
    data = json.loads(path.read_text())
    data["training"][1]["image"] = ["imagesTr/case1.nii.gz", "imagesTr/case2.nii.gz"]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"case imagesTr: 3D with 2 channel\(s\), but the first case"):
        measure(read_dataset(path), progress=False)


def test_dimensions_must_agree(tmp_path):
    path = _dataset_json(tmp_path)
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(tmp_path / "imagesTr" / "flat.png")
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(tmp_path / "labelsTr" / "flat.png")
    data = json.loads(path.read_text())
    data["training"].append({"image": "imagesTr/flat.png", "label": "labelsTr/flat.png"})
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"case flat: 2D with 1 channel\(s\), but the first case .* is 3D"):
        measure(read_dataset(path), progress=False)


def test_empty_training_list_is_refused(tmp_path):
    path = _dataset_json(tmp_path, training=[])
    with pytest.raises(DatasetError, match="'training' list is empty"):
        read_dataset(path)


@pytest.mark.parametrize(
    "content,message",
    [
        ("[1, 2]", "holds a list"),
        ('{"labels": {"0": "background", "1": "x"}}', "no 'training' list"),
        ("{not json", "is not valid JSON"),
        ('{"training": [{"image": "a.nii.gz"}], "labels": {"0": "background", "1": "x"}}', "with 'image' and 'label'"),
        ('{"training": [], "labels": {"0": "a", "1": "b"}}', "'training' list is empty"),
        ('{"training": [{"image": "a", "label": "b"}], "labels": {"1": "x", "2": "y"}}', "no value 0"),
        ('{"training": [{"image": "a", "label": "b"}], "labels": {"zero": "background", "1": "y"}}', "not an integer"),
    ],
)
def test_json_that_is_not_msd_shaped(tmp_path, content, message):
    path = tmp_path / "dataset.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_dataset(path)


def test_cli_reports_a_bad_dataset_with_exit_2(tmp_path):
    path = _dataset_json(tmp_path, labels={"0": "background", "1": "outer"})
    result = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "plan", str(path), "-o", str(tmp_path / "b"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "case case0" in result.stderr and "not declared" in result.stderr
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------------- plans
def test_anisotropic_two_channel_plan(tmp_path):
    _dataset, fingerprint, plan = _plan(write_msd_folder(tmp_path))
    assert fingerprint.spatial_dims == 3 and fingerprint.channels == 2
    assert plan.in_channels == 2 and plan.channel_names == ["T1", "T2"]
    assert plan.target_spacing == [1.0, 1.0, 6.0]
    pools = plan.network["pools"]
    assert pools[0] == [2, 2, 1], "the 6 mm axis is not pooled at the first level"
    assert plan.network["kernels"][0] == [3, 3, 1]
    divisors = [math.prod(p[a] for p in pools) for a in range(3)]
    assert all(s % d == 0 for s, d in zip(plan.patch_size, divisors, strict=True))
    assert plan.augmentation["rotate_range"] == [0.0, 0.0, 0.26]
    assert plan.split["num_folds"] == 4 and len(plan.split["validation"]) == 1
    assert plan.normalisation["scheme"] == "zscore"


def test_slices_stored_as_3d_files_plan_in_plane(tmp_path):
    """(x, y, 1) NIfTI cases (a 2D set exported as 3D files): the flat axis keeps its one voxel (no case is
    resampled to two slices), and kernels, pooling, rotation and batch are those of pictures."""
    _dataset, fingerprint, plan = _plan(write_nifti_dataset(tmp_path, cases=6, shape=(48, 40, 1), classes=2))
    assert fingerprint.spatial_dims == 3 and plan.patch_size[2] == 1 and plan.batch_size == 8
    assert plan.target_spacing == [1.0, 1.0, 1.5] and "one voxel thick along axis 2" in plan.reasons["target_spacing"]
    assert len(plan.network["pools"]) >= 2 and all(pool[2] == 1 for pool in plan.network["pools"])
    assert all(kernel[2] == 1 for kernel in plan.network["kernels"])
    assert plan.augmentation["rotate_range"] == [0.0, 0.0, 0.26]


def test_the_decathlons_4d_multimodal_files_plan_like_one_file_per_channel(tmp_path):
    """Task01/Task05 of the Medical Segmentation Decathlon store a case's modalities as one 4D file: the same cases
    as 4D files and as channel files give the same fingerprint, and the bundle reads 4D files; a 4D file whose
    volumes do not match 'modality' is refused naming the case; nnU-Net v2's 'channel_names' names the channels."""
    folder = write_msd_folder(tmp_path / "channels")
    packed = tmp_path / "packed"
    (packed / "imagesTr").mkdir(parents=True)
    training = []
    for label in sorted((folder / "labelsTr").iterdir()):
        case = label.name.removesuffix(".nii.gz")
        volumes = [nib.load(folder / "imagesTr" / f"{case}_{c:04d}.nii.gz") for c in range(2)]
        stacked = np.stack([np.asarray(v.dataobj) for v in volumes], axis=-1)
        nib.save(nib.Nifti1Image(stacked, volumes[0].affine), packed / "imagesTr" / f"{case}.nii.gz")
        training.append({"image": f"imagesTr/{case}.nii.gz", "label": str(label)})
    data = {"name": "4D", "channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, "lesion": 1}}
    (packed / "dataset.json").write_text(json.dumps({**data, "training": training}))
    _, by_channel, plan = _plan(folder)
    _, by_volume, packed_plan = _plan(packed / "dataset.json")
    assert packed_plan.channel_names == ["T1", "T2"] == plan.channel_names
    assert [c.intensities for c in by_volume.cases] == [c.intensities for c in by_channel.cases]
    assert packed_plan.patch_size == plan.patch_size and packed_plan.normalisation == plan.normalisation
    bundle = write_bundle(tmp_path / "bundle", packed_plan, read_dataset(packed / "dataset.json"), by_volume, "4D")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser["bundle_root"] = str(bundle)
    sample = Compose(parser.get_parsed_content("preprocessing_steps"))(
        {"image": str(packed / training[0]["image"]), "label": training[0]["label"]}
    )
    assert sample["image"].shape[0] == 2 and sample["image"].shape[1:] == sample["label"].shape[1:]

    (packed / "dataset.json").write_text(json.dumps({**data, "channel_names": {"0": "T1"}, "training": training}))
    with pytest.raises(DatasetError, match=r"case pat0: .*4D image of 2 volumes.*names 1 channel"):
        measure(read_dataset(packed / "dataset.json"), progress=False)


def test_rgb_jpeg_plan_reads_three_channels(tmp_path):
    _, fingerprint, plan = _plan(write_rgb_dataset(tmp_path))
    assert fingerprint.channels == 3 and fingerprint.source_dtype == "uint8"
    assert plan.normalisation["scheme"] == "rgb"
    assert plan.channel_names == ["colonoscopy RGB red", "colonoscopy RGB green", "colonoscopy RGB blue"]
    assert plan.target_spacing is None and plan.spatial_dims == 2


def test_ct_is_clipped_and_z_scored_with_dataset_statistics(tmp_path):
    path = _dataset_json(tmp_path, modality={"0": "CT"})
    _, fingerprint, plan = _plan(path)
    norm = plan.normalisation
    assert norm["scheme"] == "ct"
    low, high = norm["clip"][0]
    assert low < fingerprint.foreground[0].mean < high
    assert norm["mean"][0] == pytest.approx(fingerprint.foreground[0].mean, abs=1e-3)


def test_plans_are_deterministic(tmp_path):
    source = write_nifti_dataset(tmp_path)
    first = _plan(source)[2].to_dict()
    second = _plan(source)[2].to_dict()
    assert first == second


def test_class_thickness_of_a_stripe_and_a_disc():
    """Thickness = 2 × voxels / boundary voxels across the fine axes, in units of the finest spacing: a stripe
    6 pixels thick measures 6, a disc of radius r about r; the thick 10 mm slice axis is not a fine axis."""
    from monai_unet.plan.fingerprint import _class_thickness as thickness_of

    def _class_thickness(label, spacing, classes):
        return thickness_of(label, spacing, np.bincount(label.ravel(), minlength=classes))

    stripe = np.zeros((40, 40), dtype=np.uint8)
    stripe[10:16, :] = 1
    assert _class_thickness(stripe, np.array([1.0, 1.0]), 2)[1] == pytest.approx(6.0)
    yy, xx = np.indices((64, 64))
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 15**2).astype(np.uint8)
    assert 12.0 < _class_thickness(disc, np.array([1.0, 1.0]), 2)[1] < 18.0
    slab = np.repeat(stripe[..., None], 4, axis=2)  # 1.5 mm pixels, 10 mm slices: 6 pixels = 9 mm
    assert _class_thickness(slab, np.array([1.5, 1.5, 10.0]), 2)[1] == pytest.approx(9.0)
    assert _class_thickness(stripe, np.array([1.0, 1.0]), 3)[2] is None


def test_no_kernel_spans_an_axis_one_voxel_thick():
    """Slices stored as 3D files (x, y, 1) get 3 × 3 × 1 kernels on every level, not 3 × 3 × 3 on the levels where
    the fine axes have been pooled down to the slice spacing; an axis a few voxels thick keeps its 3s."""
    from monai_unet.plan.geometry import topology

    pools, kernels = topology([160, 144, 1], [0.7, 0.7, 5.0])
    assert len(pools) >= 3 and all(pool[2] == 1 for pool in pools)
    assert [kernel[2] for kernel in kernels] == [1] * len(kernels)
    _, kernels = topology([64, 64, 8], [1.0, 1.0, 1.0])
    assert [kernel[2] for kernel in kernels] == [3] * len(kernels)


def test_thick_classes_coarsen_the_grid_thin_ones_keep_it(tmp_path):
    """Blobs 30+ pixels thick halve the pictures (inverted at inference); 2-pixel lines keep every pixel; a thick
    3D class coarsens only the fine axes of an anisotropic grid."""
    thick = _plan(write_png_dataset(tmp_path / "thick", size=(96, 96)))[2]
    assert thick.normalisation["scale"] == 0.5 and "coarsened 2.00x" in thick.reasons["target_spacing"]
    thin_root = tmp_path / "thin"
    (thin_root / "images").mkdir(parents=True)
    (thin_root / "labels").mkdir()
    training = []
    for i in range(3):
        label = np.zeros((96, 96), dtype=np.uint8)
        label[:, 10 + 20 * i :: 24] = 1
        label[:, 11 + 20 * i :: 24] = 1
        Image.fromarray((40 + 120 * label).astype(np.uint8)).save(thin_root / "images" / f"t{i}.png")
        Image.fromarray(label).save(thin_root / "labels" / f"t{i}.png")
        training.append({"image": f"images/t{i}.png", "label": f"labels/t{i}.png"})
    (thin_root / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "line"}, "modality": {"0": "EM"}, "training": training})
    )
    thin_dataset, thin_fingerprint, thin = _plan(thin_root / "dataset.json")
    assert thin.normalisation["scale"] == 1.0
    # thin classes add the recall of their skeleton to the loss; thick ones do not
    assert thick.loss["name"] == "DiceCELoss" and "no class is thin" in thick.reasons["loss"]
    assert thin.loss["name"] == "DiceCESkeletonRecallLoss" and thin.loss["skeleton_classes"] == [1]
    assert "line (2.0 voxels)" in thin.reasons["loss"]
    bundle = write_bundle(tmp_path / "thin_bundle", thin, thin_dataset, thin_fingerprint, "thin lines")
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "train.json")
    # the thin class's Rand error is validated (plain and mirrored) and guards the mirroring decision
    assert topology_guards(thick) == {} and topology_guards(thin) == {"val_rand_error_1": 1}
    assert parser["validate#mirroring#guard_metrics"] == ["val_rand_error_1"]
    for evaluator in ("validate#additional_metrics", "validate#mirrored#evaluator#additional_metrics"):
        assert parser[evaluator]["val_rand_error_1"]["metric_fn"]["membrane_channel"] == 1
    loss = parser.get_parsed_content("loss")
    labels = torch.from_numpy(np.asarray(Image.open(thin_root / "labels" / "t0.png"), dtype=np.int64))[None, None]
    truth = 20.0 * torch.cat([1 - labels, labels], dim=1).float() - 10.0
    missing = truth.flip(1)  # every line predicted as background: none of its skeleton recalled
    assert loss(missing, labels).item() - DiceCELoss(
        to_onehot_y=True, softmax=True, include_background=False, batch=True
    )(missing, labels).item() == pytest.approx(1.0, abs=1e-3)

    shape = (48, 48, 6)
    root = tmp_path / "thick3d"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = np.diag([1.0, 1.0, 6.0, 1.0])
    grid = np.indices(shape[:2])
    for i in range(3):
        label = np.zeros(shape, dtype=np.uint8)
        label[((grid[0] - 24) ** 2 + (grid[1] - 22 - i) ** 2 < 18**2)] = 1
        nib.save(nib.Nifti1Image((100.0 * label).astype(np.float32), affine), root / "imagesTr" / f"c{i}_0000.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"c{i}.nii.gz")
    (root / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "organ"}, "modality": {"0": "MR"}})
    )
    plan = _plan(root)[2]
    assert plan.target_spacing[2] == pytest.approx(6.0)
    assert plan.target_spacing[0] == plan.target_spacing[1] > 1.25


def test_budget_shrinks_the_configuration(tmp_path):
    source = write_png_dataset(tmp_path, size=(256, 256))
    big = _plan(source, budget=60.0)[2]
    small = _plan(source, budget=0.5)[2]
    cost = [p.batch_size * math.prod(p.patch_size) * p.network["features"][0] ** 2 for p in (big, small)]
    assert cost[1] < cost[0]
    assert small.budget["iterations_estimate"] > 0


def test_short_budgets_still_plan_enough_iterations(tmp_path):
    """Below 20 minutes the plan keeps at least MIN_ITERATIONS optimiser steps (smaller patches) rather than 40 a
    minute: a 3D ACDC plan for 10 minutes with 387 large-patch steps lost by far (``benchmarks/RESULTS.md``)."""
    from monai_unet.plan.recipe import MIN_ITERATIONS

    source = write_png_dataset(tmp_path, size=(256, 256))
    for minutes in (5.0, 10.0):
        plan = _plan(source, budget=minutes)[2]
        assert plan.budget["iterations_estimate"] >= MIN_ITERATIONS, minutes
        assert f"at least {MIN_ITERATIONS} iterations" in plan.reasons["calibration"]


def test_the_cache_takes_at_most_half_the_available_memory(tmp_path, monkeypatch):
    """Caching every preprocessed case would take more than half the memory: the plan caches the share that fits
    (MONAI's cache_rate) and the training dataset caches that many cases; with memory to spare, all of them."""
    from monai_unet.plan import recipe
    from monai_unet.plan.cache import CACHE_SHARE, cached_bytes

    source = write_nifti_dataset(tmp_path / "data", cases=6)
    dataset = read_dataset(source)
    fingerprint = measure(dataset, progress=False)
    roomy = make_plan(dataset, fingerprint, 20.0, timer=fixed_timer)
    assert roomy.budget["cache_rate"] == 1.0 and "every case is cached" in roomy.reasons["cache"]
    split = roomy.split
    cropped = roomy.normalisation["nonzero"]
    needed = cached_bytes(fingerprint, split["training"] + split["validation"], roomy.target_spacing, 1.0, cropped)
    assert CACHE_SHARE == 0.5
    monkeypatch.setattr(recipe, "available_memory", lambda: needed + 1000)  # half the memory holds half the cases
    tight = make_plan(dataset, fingerprint, 20.0, timer=fixed_timer)
    assert tight.budget["cache_rate"] == 0.5 and "50% of them are cached" in tight.reasons["cache"]
    bundle = write_bundle(tmp_path / "bundle", tight, dataset, fingerprint, "tight")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser["bundle_root"] = str(bundle)
    train_set = parser.get_parsed_content("train#dataset")
    assert train_set.cache_num == len(split["training"]) // 2 < len(split["training"])


def test_in_training_validation_keeps_an_evenly_spaced_subset_when_a_pass_is_too_long():
    from monai_unet.plan.validation_budget import VALIDATION_SHARE, in_training_cases

    usable = 1000.0
    allowed = VALIDATION_SHARE / 2 * usable  # 50 s
    assert in_training_cases([5.0] * 10, usable) == list(range(10)), "50 s: every case"
    kept = in_training_cases([10.0] * 10, usable)  # 100 s: the 5 cases that fit, first and last included
    assert kept == [0, 2, 4, 7, 9] and 10.0 * len(kept) <= allowed
    assert in_training_cases([400.0] * 3, usable) == [1], "one case at least, from the middle"
    assert in_training_cases([400.0], usable) == [0]


def test_training_validates_a_subset_when_validating_every_case_costs_too_much(tmp_path):
    """Validation cases whose pass would take most of the budget: training validates a subset (split.json's
    ``validation_in_training``), caches only those, and ``evaluate`` still scores every validation case."""

    def slow_forward(*args, **kwargs):
        return StepTiming(train_step_s=fixed_timer(*args, **kwargs).train_step_s, forward_s=2.0)

    dataset = read_dataset(write_nifti_dataset(tmp_path / "data", cases=10))
    plan = make_plan(dataset, measure(dataset, progress=False), 1.0, fold=0, timer=slow_forward)
    kept = plan.split["validation_in_training"]
    assert 1 <= len(kept) < len(plan.split["validation"]) and set(kept) <= set(plan.split["validation"])
    assert "Training validates" in plan.reasons["split"]
    bundle = write_bundle(tmp_path / "bundle", plan, dataset, measure(dataset, progress=False), "subset")
    split = json.loads((bundle / "configs" / "split.json").read_text())
    assert len(split["validation_in_training"]) == len(kept) and len(split["validation"]) == len(
        plan.split["validation"]
    )
    for names, side in (([], "validation_in_training"), (["evaluate"], "validation")):
        parser = ConfigParser()
        parser.read_config([str(bundle / "configs" / f"{n}.json") for n in ["train", *names]])
        parser["bundle_root"] = str(bundle)
        assert len(parser.get_parsed_content("validate#dataset#data")) == len(split[side]), side
    quick = make_plan(dataset, measure(dataset, progress=False), 1.0, fold=0, timer=fixed_timer)
    assert "validation_in_training" not in quick.split, "cheap validations: every case in training"


def test_the_validation_cost_is_estimated_on_the_cropped_cases(tmp_path):
    """Skull-stripped-like cases (an imaged region of an eighth of the volume, zero around it) are cropped to that
    region for training and validation alike, so the validation's tiles are counted on the cropped shape."""
    from monai_unet.plan.geometry import case_shape_at
    from monai_unet.plan.inference_choice import VALIDATION_OVERLAP, tile_count

    source = write_nifti_dataset(tmp_path / "data", shape=(48, 48, 24))
    for item in json.loads(source.read_text())["training"]:
        path = source.parent / item["image"]
        nifti = nib.load(path)
        image = np.zeros(nifti.shape, dtype=np.float32)
        image[12:36, 12:36, 6:18] = np.asarray(nifti.dataobj)[12:36, 12:36, 6:18] + 20.0
        nib.save(nib.Nifti1Image(image, nifti.affine), path)
    _, fingerprint, plan = _plan(source)
    assert plan.normalisation["nonzero"], "an eighth of the volume is imaged: z-scored inside it and cropped to it"
    validation = [c for c in fingerprint.cases if c.name in plan.split["validation"]]

    def tiles(cropped: bool) -> int:
        shapes = [case_shape_at(c, plan.target_spacing, 1.0, cropped) for c in validation]
        return sum(tile_count(s, plan.patch_size, VALIDATION_OVERLAP) for s in shapes)

    assert tiles(True) < tiles(False), "else the test proves nothing"
    forward_s = fixed_timer(plan.network, plan.patch_size, plan.batch_size).forward_s
    assert plan.budget["validation_estimate_s"] == pytest.approx(tiles(True) * forward_s * 1.2, abs=0.01)


def test_the_calibration_says_whether_the_kept_rung_reached_the_iterations(tmp_path):
    """Every rung equally slow: at 95 % of the iterations the kept rung is within the estimate's 10 % and the reason
    says so (not that no rung fitted); at 50 % no rung fits, and the reason says the smallest is used."""
    from monai_unet.plan.recipe import ITERATIONS_PER_MINUTE, MIN_ITERATIONS

    floor = max(MIN_ITERATIONS, ITERATIONS_PER_MINUTE * 20)  # the 20-minute plan's
    dataset = read_dataset(write_png_dataset(tmp_path, size=(256, 256)))
    fingerprint = measure(dataset, progress=False)

    def plan_at(step_s: float):
        def timer(network_kwargs, patch, batch, device="cpu", precision="auto", loss=None):
            return StepTiming(train_step_s=step_s, forward_s=1e-4)

        return make_plan(dataset, fingerprint, 20.0, timer=timer)

    train_s = plan_at(1.0).budget["iterations_estimate"]  # seconds of training at 1 s a step
    near, short = plan_at(train_s / (0.95 * floor)), plan_at(train_s / (0.5 * floor))
    assert 0.9 * floor <= near.budget["iterations_estimate"] < floor
    assert "within the 10 %" in near.reasons["calibration"] and "smallest" not in near.reasons["calibration"]
    assert "the smallest is used" in short.reasons["calibration"]


def test_the_calibration_times_the_augmentation_with_the_step():
    """The per-iteration time the plan is sized by includes the planned augmentation of the batch's patches (it runs
    on the same threads as the step); the chain timed is the training pipeline's own tail."""
    from monai_unet.plan.calibrate import time_training_step
    from monai_unet.plan.ladder import network_kwargs

    net = network_kwargs(2, 1, 2, 4, [[2, 2]], [[3, 3], [3, 3]])
    timing = time_training_step(net, [32, 32], batch_size=2, repeats=1)
    assert 0 < timing.augmentation_s < timing.train_step_s


def test_the_calibration_times_the_planned_loss_on_region_labels():
    """The step is timed with the planned loss (a skeleton-recall loss skeletonises each label patch) on labels of
    smooth regions: per-voxel noise would make the skeleton far costlier than a real label's."""
    from monai_unet.plan.calibrate import region_labels, time_training_step
    from monai_unet.plan.ladder import network_kwargs
    from monai_unet.plan.loss import loss_config

    labels = region_labels(2, 3, (48, 64))
    assert labels.shape == (2, 1, 48, 64) and set(labels.unique().tolist()) == {0.0, 1.0, 2.0}
    same_as_right = (labels[..., 1:] == labels[..., :-1]).float().mean()
    assert same_as_right > 0.85, "regions, not noise (noise of 3 classes: about 1/3 of neighbours agree)"
    net = network_kwargs(2, 1, 2, 4, [[2, 2]], [[3, 3], [3, 3]])
    config = loss_config(
        {
            "name": "DiceCESkeletonRecallLoss",
            "skeleton_classes": [1],
            "skeleton_weight": 1.0,
            "include_background": False,
            "batch": True,
        }
    )
    assert time_training_step(net, [32, 32], batch_size=2, repeats=1, loss=config).train_step_s > 0
    with pytest.raises(Exception, match="NoSuchLoss"):
        time_training_step(net, [32, 32], batch_size=2, repeats=1, loss={"_target_": "NoSuchLoss"})


def test_the_plan_times_its_own_loss_and_leaves_the_end_reserve(tmp_path):
    """The timer gets the plan's own loss config, and the iterations planned fill the budget less the validations
    during training and TimeBudget's reserve at the end (final validation + mirroring check, 1.2x their estimate)."""
    from monai_unet.handlers.budget import RESERVE_FACTOR
    from monai_unet.plan.loss import loss_config

    source = write_png_dataset(tmp_path, size=(256, 256))
    dataset = read_dataset(source)
    fingerprint = measure(dataset, progress=False)
    losses = []

    def recording(network_kwargs, patch, batch, device="cpu", precision="auto", loss=None):
        losses.append(loss)
        return fixed_timer(network_kwargs, patch, batch, device)

    plan = make_plan(dataset, fingerprint, 20.0, timer=recording)
    assert losses and all(loss == loss_config(plan.loss) for loss in losses)
    budget = plan.budget
    axes = plan.inference["mirror_check_axes"]
    validation = budget["validation_estimate_s"]
    reserve = RESERVE_FACTOR * (1 + (2 ** len(axes) if axes else 0)) * validation
    spent = (
        budget["iterations_estimate"] * budget["train_step_s"]
        + (budget["validations_planned"] - 1) * validation
        + reserve
    )
    assert spent == pytest.approx(budget["seconds"], rel=0.01)


def _plan_with_one_busy_timing(tmp_path, busy_call: int, slowdown: float):
    """A 2D plan whose ``busy_call``-th step timing (1-based) is ``slowdown`` times slow, the plan a quiet machine
    gets, and the patches timed in order."""
    source = write_png_dataset(tmp_path, size=(256, 256))
    dataset = read_dataset(source)
    fingerprint = measure(dataset, progress=False)
    quiet = make_plan(dataset, fingerprint, 20.0, timer=fixed_timer)
    calls = []

    def busy_once(network_kwargs, patch, batch, device="cpu", precision="auto", loss=None):
        timing = fixed_timer(network_kwargs, patch, batch, device)
        calls.append(list(patch))
        slow = slowdown if len(calls) == busy_call else 1.0
        return StepTiming(timing.train_step_s * slow, timing.forward_s * slow)

    return make_plan(dataset, fingerprint, 20.0, timer=busy_once), quiet, calls


def test_a_busy_first_timing_does_not_shrink_the_plan(tmp_path):
    """The first timing (the smallest rung) taken while the machine is busy, 20x slow: every other rung then looks too
    slow, the smallest is timed again, and the search climbs back to the plan a quiet machine gets."""
    busy, quiet, calls = _plan_with_one_busy_timing(tmp_path, 1, 20.0)
    assert busy.patch_size == quiet.patch_size and busy.network == quiet.network
    assert calls[0] == calls[1], "the smallest rung is timed again"
    assert quiet.patch_size != calls[0], "the quiet plan is not the smallest rung (else the test proves nothing)"


def test_a_rung_timed_far_slower_than_predicted_is_timed_again(tmp_path):
    """The second timing (the first rung predicted to fit) taken while the machine is busy: it is timed again at once
    and the plan is the quiet one; without the second timing the plan would step down to a smaller rung."""
    from monai_unet.plan.recipe import SLOW_TIMING

    busy, quiet, calls = _plan_with_one_busy_timing(tmp_path, 2, 2 * SLOW_TIMING)
    assert calls[1] == calls[2], "the slow rung is timed again at once"
    assert busy.patch_size == quiet.patch_size and busy.network == quiet.network
    assert len(calls) > 2 and calls[0] != calls[1]


@pytest.mark.parametrize(
    "dims,anisotropic_axis,validation_s,expected",
    [
        (2, None, 10.0, [0, 1]),  # 4 validations = 40 s of a 1200 s budget
        (2, None, 40.0, []),  # 160 s: more than 10 %
        (3, None, 14.0, [0, 1, 2]),  # 8 x 14 = 112 s
        (3, 2, 27.0, [0, 1]),  # 8 x 27 = 216 s too much; in-plane 4 x 27 = 108 s fits
        (3, None, 27.0, []),  # isotropic: no in-plane fallback
    ],
)
def test_mirroring_is_checked_where_the_budget_affords_it(dims, anisotropic_axis, validation_s, expected):
    assert mirror_check_axes(dims, anisotropic_axis, validation_s, budget_s=1200.0) == expected


def test_ladder_narrows_then_shrinks_and_keeps_the_batch():
    """The calibration ladder: width 32, width 16, then smaller patches down to the minimum; never a smaller batch."""
    from monai_unet.plan.ladder import ladder

    rungs = list(ladder(np.array([256.0, 256.0]), 8, np.array([64.0, 64.0])))
    assert [r.base for r in rungs[:2]] == [32, 16] and all(r.base == 16 for r in rungs[1:])
    assert {r.batch for r in rungs} == {8}
    sizes = [r.patch[0] for r in rungs[1:]]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 64.0


def test_rand_error_selection_is_for_2d_binary_maps_only(tmp_path):
    dataset = read_dataset(write_nifti_dataset(tmp_path / "data"))
    fingerprint = measure(dataset, progress=False)
    with pytest.raises(DatasetError, match=r"Rand error scores a 2D boundary map.*3D with 2 foreground"):
        make_plan(dataset, fingerprint, 20.0, selection="rand_error", timer=fixed_timer)
    with pytest.raises(ValueError, match=r"selection metric 'hausdorff'"):
        make_plan(dataset, fingerprint, 20.0, selection="hausdorff", timer=fixed_timer)
    shown = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", "plan", "--help"], capture_output=True, text=True, check=True
    )
    assert "--select-by {" + ",".join(SELECTION_METRICS) + "}" in shown.stdout  # the CLI names them literally


def test_folds_are_disjoint_and_cover_every_case(tmp_path):
    source = write_png_dataset(tmp_path, cases=10)
    dataset = read_dataset(source)
    from monai_unet.plan.split import choose_split

    held = [choose_split(dataset, k)["validation"] for k in range(5)]
    assert sorted(n for names in held for n in names) == sorted(c.name for c in dataset.training)
    with pytest.raises(ValueError, match="--fold must be between 0 and 4"):
        choose_split(dataset, 5)


def test_fold_all_trains_and_validates_on_every_case(tmp_path):
    """``--fold all`` (one-case datasets, final weights): every case on both sides, said so in the split's mode."""
    from monai_unet.plan.split import choose_split

    one = read_dataset(write_png_dataset(tmp_path / "one", cases=1))
    with pytest.raises(ValueError, match="--fold all"):
        choose_split(one, 0)
    split = choose_split(one, "all")
    assert split["training"] == split["validation"] == [one.training[0].name]
    assert "not held out" in split["mode"]


# --------------------------------------------------------------------------------------------------- bundles
def _write(source, tmp_path, budget=20.0):
    dataset, fingerprint, plan = _plan(source, budget)
    return write_bundle(tmp_path / "bundle", plan, dataset, fingerprint, "test bundle"), plan


def test_train_and_inference_share_network_and_preprocessing(tmp_path):
    bundle, _ = _write(write_nifti_dataset(tmp_path / "data"), tmp_path)
    train = json.loads((bundle / "configs" / "train.json").read_text())
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    for key in ("network_def", "preprocessing_steps", "patch_size", "target_spacing", "num_classes"):
        assert train[key] == inference[key], key


@pytest.mark.parametrize(
    "writer",
    [
        lambda root: write_nifti_dataset(root, cases=3, shape=(64, 64, 32)),
        lambda root: write_png_dataset(root, size=(128, 128)),
    ],
    ids=["3d", "2d"],
)
def test_deep_supervision_on_request_heads_every_decoder_level_but_the_two_lowest(tmp_path, writer):
    """``deep_supervision``: heads at levels 1 .. depth - 3 and MONAI's DeepSupervisionLoss around the planned loss,
    which scores a real training step's list of outputs; without it (the default) one output and the plain loss."""
    from monai.losses import DeepSupervisionLoss

    dataset = read_dataset(writer(tmp_path / "data"))
    fingerprint = measure(dataset, progress=False)
    for name, deep in (("plain", False), ("deep", True)):
        plan = make_plan(dataset, fingerprint, 20.0, deep_supervision=deep, timer=fixed_timer)
        write_bundle(tmp_path / name, plan, dataset, fingerprint, name)
    parsed = {}
    for name in ("plain", "deep"):
        parser = ConfigParser()
        parser.read_config(tmp_path / name / "configs" / "train.json")
        parsed[name] = parser
    plain_net = parsed["plain"].get_parsed_content("network_def")
    assert plain_net.deep_supervision == 0 and not isinstance(
        parsed["plain"].get_parsed_content("loss"), DeepSupervisionLoss
    )
    network, loss = parsed["deep"].get_parsed_content("network_def"), parsed["deep"].get_parsed_content("loss")
    depth = len(network.features)
    assert depth >= 4 and network.deep_supervision == depth - 3
    assert isinstance(loss, DeepSupervisionLoss)
    patch = parsed["deep"].get_parsed_content("patch_size")
    outputs = network.train()(torch.randn(2, network.in_channels, *patch))
    assert len(outputs) == depth - 2
    label = torch.randint(0, network.out_channels, (2, 1, *patch)).float()
    loss(outputs, label).backward()
    assert all(p.grad is not None for p in network.aux_heads.parameters())
    plans = json.loads((tmp_path / "deep" / "configs" / "plans.json").read_text())
    assert plans["plan"]["loss"]["deep_supervision"] is True and "Deep supervision" in plans["plan"]["reasons"]["loss"]


def test_batch_norm_on_request(tmp_path):
    dataset = read_dataset(write_msd_folder(tmp_path / "data"))
    fingerprint = measure(dataset, progress=False)
    plan = make_plan(dataset, fingerprint, 20.0, norm="batch", timer=fixed_timer)
    assert plan.network["norm"] == "batch" and "batch norm" in plan.reasons["network"]
    bundle = write_bundle(tmp_path / "bundle", plan, dataset, fingerprint, "batch norm")
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    norms = {type(m).__name__ for m in parser.get_parsed_content("network_def").modules() if "Norm" in type(m).__name__}
    assert norms == {"BatchNorm3d"}
    default = make_plan(dataset, fingerprint, 20.0, timer=fixed_timer)
    assert default.network["norm"] == "instance" and "instance norm" in default.reasons["network"]


def test_a_deeply_supervised_bundle_trains_and_infers(tmp_path, capsys, fixed_step_timing):
    """``plan --deep-supervision`` (its step timing stood in for), then the stock runner trains the bundle (the
    trainer's loss takes the list of outputs, validation and the saved model the one output) and ``segment`` writes
    a label map on the image's grid."""
    source = write_png_dataset(tmp_path / "data", size=(128, 128))
    bundle = tmp_path / "bundle"
    planned = run_in_process(
        capsys, "plan", source, "-o", bundle, "--budget-min", "2", "--no-progress", "--deep-supervision"
    )
    assert planned.returncode == 0, planned.stderr[-2000:]
    heads = json.loads((bundle / "configs" / "plans.json").read_text())["plan"]["network"]["deep_supervision"]
    assert heads >= 1
    _cli("train", "--bundle", str(bundle), "budget_minutes=0.2", "epoch_length=4")
    weights = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert sum(key.startswith("aux_heads.") for key in weights) == 2 * heads, "each head's weight and bias saved"
    image = sorted((source.parent / "images").iterdir())[0]
    out = tmp_path / "predicted.png"
    _cli("segment", str(image), "-o", str(out), "--bundle", str(bundle), "--no-progress")
    assert np.asarray(Image.open(out)).shape == np.asarray(Image.open(image)).shape[:2]


@pytest.mark.parametrize("writer", [write_nifti_dataset, write_png_dataset], ids=["3d", "2d"])
def test_datasets_cache_every_deterministic_step(tmp_path, writer):
    """``CacheDataset`` caches up to its first random step: in training that is the first augmentation (loading,
    resampling, normalisation and the class locations are done once), in validation nothing is left to each run."""
    bundle, _ = _write(writer(tmp_path / "data"), tmp_path)
    assert_caches_every_deterministic_step(bundle)


def test_bundle_is_not_overwritten_without_force(tmp_path):
    source = write_png_dataset(tmp_path / "data")
    bundle, _ = _write(source, tmp_path)
    dataset, fingerprint, plan = _plan(source)
    with pytest.raises(FileExistsError, match="--force"):
        write_bundle(bundle, plan, dataset, fingerprint, "again")
    write_bundle(bundle, plan, dataset, fingerprint, "again", force=True)
    assert json.loads((bundle / "configs" / "metadata.json").read_text())["name"] == "again"


@pytest.mark.parametrize("workflow_type,config", [("train", "train.json"), ("inference", "inference.json")])
def test_planned_bundle_passes_check_properties(tmp_path, workflow_type, config):
    bundle, _ = _write(write_nifti_dataset(tmp_path / "data"), tmp_path)
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / config),
        meta_file=str(bundle / "configs" / "metadata.json"),
        workflow_type=workflow_type,
        bundle_root=str(bundle),
    )
    workflow.initialize()
    assert workflow.check_properties() in (None, [])


@pytest.mark.parametrize("writer", [write_msd_folder, write_rgb_dataset], ids=["3d-anisotropic", "2d-rgb"])
def test_planned_bundle_passes_verify_net_in_out(tmp_path, writer):
    bundle, _ = _write(writer(tmp_path / "data"), tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "verify_net_in_out",
            "network_def",
            "--meta_file",
            str(bundle / "configs" / "metadata.json"),
            "--config_file",
            str(bundle / "configs" / "inference.json"),
            "--n",
            "1",
            "--bundle_root",
            str(bundle),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "data shape of network is verified" in result.stdout + result.stderr


def test_bundle_docs_and_license(tmp_path):
    bundle, plan = _write(write_png_dataset(tmp_path / "data"), tmp_path)
    readme = (bundle / "docs" / "README.md").read_text()
    for reason in plan.reasons.values():
        assert reason in readme
    headings = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
    for section in MODEL_ZOO_SECTIONS:  # the model-zoo README sections, in this order
        assert any(h.startswith(section) for h in headings), section
    order = [next(i for i, h in enumerate(headings) if h.startswith(section)) for section in MODEL_ZOO_SECTIONS]
    assert order == sorted(order), headings
    assert "CC0 (synthetic test data)" in (bundle / "LICENSE").read_text()
    assert (bundle / "docs" / "data_license.txt").read_text() == (bundle / "LICENSE").read_text()
    split = json.loads((bundle / "configs" / "split.json").read_text())
    assert split["validation"] and split["training"]
    assert {item["image"] for item in split["validation"]}.isdisjoint(item["image"] for item in split["training"])


# ------------------------------------------------------------------------------------------------ end to end
def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "monai_unet.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-3000:]}"
    return result


def _replan_with_mirroring_check(bundle: Path, source: Path, axes: list[int]) -> None:
    """Rewrite ``bundle`` from its own plan with the mirroring check planned along ``axes``, as the planner does
    where the budget affords it."""
    plan = read_plan(bundle)
    plan.inference["mirror_check_axes"] = axes
    dataset = read_dataset(source)
    write_bundle(bundle, plan, dataset, measure(dataset, progress=False), "tiny membranes", force=True)


def _check_mirroring_decision(bundle: Path, plans: dict, guards: list[str]) -> None:
    """Training checked test-time mirroring on the planned axes, decided by the gain and the rise of the ``guards``
    (plain values from the best validation), and the inference and evaluation configs mirror what plans.json says."""
    axes = plans["plan"]["inference"]["mirror_check_axes"]
    decision = plans["postprocessing"]
    assert axes or not guards, "the guards must be exercised"
    if axes:
        measured = decision["mirroring"]
        assert measured["axes"] == axes and measured["plain_metric"] == pytest.approx(plans["training"]["best_metric"])
        assert sorted(measured["guards"]) == guards == sorted(measured["guard_rises"])
        best = plans["training"]["best_row"]
        for name in guards:
            assert measured["guard_rises"][name] == pytest.approx(measured["guards"][name] - best[name], abs=1e-5)
        on = measured["gain"] >= MIN_GAIN and all(rise < MIN_GAIN for rise in measured["guard_rises"].values())
        assert decision["tta_axes"] == (axes if on else [])
    else:
        assert decision["tta_axes"] == []
    for config in ("inference", "evaluate"):
        parser = ConfigParser()
        names = ["train", "evaluate"] if config == "evaluate" else [config]
        parser.read_config([str(bundle / "configs" / f"{name}.json") for name in names])
        parser["bundle_root"] = str(bundle)
        inferer = parser.get_parsed_content("validate#inferer" if config == "evaluate" else "inferer")
        assert list(inferer.mirror_axes) == decision["tta_axes"], config


@pytest.mark.parametrize(
    "writer,ext",
    [(write_membrane_dataset, ".png"), (write_nifti_dataset, ".nii.gz")],
    ids=["2d-png-membranes", "3d-nifti-multiclass"],
)
def test_plan_train_evaluate_infer_segment(tmp_path, writer, ext, capsys):
    source = writer(tmp_path / "data")
    bundle = tmp_path / "bundle"
    select = ["--select-by", "rand_error"] if ext == ".png" else []  # membranes: the task's own metric picks
    planned = _cli("plan", str(source), "-o", str(bundle), "--budget-min", "0.2", "--no-progress", *select)
    assert planned.stdout.strip() == str(bundle.resolve())
    if ext == ".png":  # the guard must run: on a loaded machine 0.2 minutes may not afford the mirroring check
        _replan_with_mirroring_check(bundle, source, [0, 1])

    if ext == ".png":
        nothing = run_in_process(capsys, "train", "--bundle", bundle, "resume=true")
        assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr, nothing.stderr[-2000:]

    trained = _cli("train", "--bundle", str(bundle))
    plans = json.loads((bundle / "configs" / "plans.json").read_text())
    summary = plans["training"]
    assert summary["iterations"] >= 1 and summary["validations"] >= 1
    (run,) = (bundle / "runs").iterdir()
    history = (run / "validation_history.csv").read_text().splitlines()
    assert ("val_rand_error" in history[0]) == (ext == ".png"), history[0]
    if ext == ".png":
        errors = [float(row.split(",")[history[0].split(",").index("val_rand_error")]) for row in history[1:]]
        assert summary["best_metric"] == pytest.approx(min(errors)), "the lowest Rand error picks the model"
    assert summary["seconds"] <= 0.2 * 60 + 20, "the run overshot its budget by more than the slack"
    assert plans["postprocessing"]["decided"] is True
    # the step was timed at the precision training used: bfloat16 where this CPU runs it natively
    from monai_unet.inferers import bf16_supported

    assert json.loads((bundle / "configs" / "train.json").read_text())["precision"] == "auto"
    assert plans["plan"]["budget"]["calibrated_precision"] == ("bf16" if bf16_supported("cpu") else "fp32")
    # the membranes are a thin class: validation measures their Rand error, which mirroring must not raise
    _check_mirroring_decision(bundle, plans, ["val_rand_error_1"] if ext == ".png" else [])
    assert (bundle / "models" / "model.pt").read_bytes() == (run / "model.pt").read_bytes(), "first weights"
    assert f"run folder {run}" in trained.stderr and "best model also written" in trained.stderr
    if ext == ".png":  # resuming from a damaged checkpoint: exit 2 with the handler's own words (what to delete)
        checkpoint = run / "checkpoint_last.pt"
        intact = checkpoint.read_bytes()
        checkpoint.write_bytes(intact[: len(intact) // 2])
        damaged = run_in_process(capsys, "train", "--bundle", bundle, "resume=true")
        last = damaged.stderr.strip().splitlines()[-1]
        assert damaged.returncode == 2 and "checkpoint_last.pt: cannot load the training checkpoint" in last, last
        assert "Delete it to start afresh" in last and "internal error" not in last
        checkpoint.write_bytes(intact)
    if ext == ".png":  # a later run replaces the first's weights and plans with --promote (without: test_bundles)
        _cli("train", "--bundle", str(bundle), "--promote", "budget_minutes=0.05", "precision=fp32")
        assert len(list((bundle / "runs").iterdir())) == 2
        latest = max((bundle / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        assert (bundle / "models" / "model.pt").read_bytes() == (latest / "model.pt").read_bytes()
        assert (
            json.loads((bundle / "configs" / "plans.json").read_text())["training"]
            == json.loads((latest / "training_record.json").read_text())["training"]
        )

    _cli("evaluate", "--bundle", str(bundle))
    metrics = json.loads((bundle / "eval" / "metrics_summary.json").read_text())
    assert 0.0 <= metrics["metrics"]["val_mean_dice"] <= 1.0
    if ext != ".png":  # --dataset-dir a dataset.json whose test list has labels: those cases are scored
        held_out = tmp_path / "held_out" / "dataset.json"
        held_out.parent.mkdir()
        first = read_dataset(source).training[0]
        held_out.write_text(json.dumps({"test": [{"image": str(first.images[0]), "label": str(first.label)}]}))
        _cli("evaluate", "--bundle", str(bundle), "--dataset-dir", str(held_out), "--output-dir", str(tmp_path / "ev"))
        scored = json.loads((tmp_path / "ev" / "metrics_summary.json").read_text())
        assert scored["cases"] == 1 and metrics["cases"] == len(plans["plan"]["split"]["validation"])
        assert first.images[0].name in (tmp_path / "ev" / "val_mean_dice_raw.csv").read_text()

    cases = read_dataset(source).training
    out = tmp_path / "out"
    if ext == ".png":
        inputs = tmp_path / "inputs"
        inputs.mkdir()
        for case in cases[:2]:
            shutil.copy(case.images[0], inputs / case.images[0].name)
        _cli("infer", "--bundle", str(bundle), "--dataset-dir", str(inputs), "--output-dir", str(out))
        for case in cases[:2]:
            written = np.asarray(Image.open(out / f"{case.name}_seg.png"))
            assert written.shape == np.asarray(Image.open(case.images[0])).shape
            assert set(np.unique(written)) <= {0, 1}
    else:
        _cli("infer", "--bundle", str(bundle), "--dataset-dir", str(source), "--output-dir", str(out))
        written = nib.load(out / "new_seg.nii.gz")
        source_image = nib.load(source.parent / "imagesTs" / "new.nii.gz")
        assert written.shape == source_image.shape
        np.testing.assert_allclose(written.affine, source_image.affine, atol=1e-4)
        assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}

    if ext == ".png":  # 3D segment runs on the shipped MRI bundle (test_cli_segment.py)
        single = tmp_path / f"single_seg{ext}"
        _cli("segment", str(cases[0].images[0]), "-o", str(single), "--bundle", str(bundle), "--no-progress")
        assert single.is_file()


def test_plan_on_real_acdc_cases(tmp_path, shared_data):
    acdc = shared_data / "acdc_3dcardiac_subset"
    data = json.loads((acdc / "dataset.json").read_text())
    subset = {
        **data,
        "training": data["training"][:4],
        "validation": [],
    }
    for item in subset["training"]:
        for key in ("image", "label"):
            item[key] = str(acdc / item[key])
    source = tmp_path / "dataset.json"
    source.write_text(json.dumps(subset))
    dataset, fingerprint, plan = _plan(source)
    assert plan.num_classes == 4 and plan.spatial_dims == 3
    assert plan.target_spacing[2] == pytest.approx(10.0) and plan.network["pools"][0][2] == 1
    assert set(plan.split["validation"]) == {"patient001_frame01", "patient001_frame02"} or set(
        plan.split["validation"]
    ) == {"patient002_frame01", "patient002_frame02"}
    bundle = write_bundle(tmp_path / "bundle", plan, dataset, fingerprint, "acdc")
    assert json.loads((bundle / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"][
        "channel_def"
    ] == {"0": "background", "1": "right ventricle", "2": "myocardium", "3": "left ventricle"}


@pytest.mark.slow
def test_plan_train_infer_the_one_itksnap_case(tmp_path, shared_data):
    """The repository's ITK-SNAP dataset.json (one real brain MRI, 8 structures): planned with ``--fold all``,
    trained, and its inference lands on the scan's own grid."""
    data = json.loads(
        (Path(__file__).resolve().parents[1] / "benchmarks" / "datasets" / "itksnap" / "dataset.json").read_text()
    )
    scan = shared_data / "itksnap_mricrop" / "nifti" / "MRIcrop-orig.nii.gz"
    data["training"] = [{"image": str(scan), "label": str(scan.with_name("MRIcrop-seg.nii.gz"))}]
    data["test"] = [{"image": str(scan)}]
    source = tmp_path / "dataset.json"
    source.write_text(json.dumps(data))
    bundle = tmp_path / "bundle"  # without --fold all it is refused (test_fold_all_trains_and_validates_on_every_case)
    _cli("plan", str(source), "-o", str(bundle), "--fold", "all", "--budget-min", "0.2", "--no-progress")
    plans = json.loads((bundle / "configs" / "plans.json").read_text())
    assert plans["plan"]["split"]["fold"] == "all" and plans["plan"]["num_classes"] == 9
    _cli("train", "--bundle", str(bundle))
    training = json.loads((bundle / "configs" / "plans.json").read_text())["training"]
    assert training["budget_s"] == pytest.approx(12.0) and training["iterations"] >= 1 and training["validations"] >= 1
    out = tmp_path / "out"
    _cli("infer", "--bundle", str(bundle), "--dataset-dir", str(source), "--output-dir", str(out))
    written, original = nib.load(out / "MRIcrop-orig_seg.nii.gz"), nib.load(scan)
    assert written.shape == original.shape
    np.testing.assert_allclose(written.affine, original.affine, atol=1e-4)
    assert set(np.unique(np.asarray(written.dataobj))) <= set(range(9))


def test_rgb_bundle_infers_one_png_per_jpeg(tmp_path):
    """An RGB picture is one file with three channels: inference lists it as one case (random weights suffice)."""
    import torch

    from monai_unet.networks import UNet

    source = write_rgb_dataset(tmp_path / "data", cases=4)
    bundle, plan = _write(source, tmp_path)
    torch.save(UNet(**plan.network).state_dict(), bundle / "models" / "model.pt")
    out = tmp_path / "out"
    _cli("infer", "--bundle", str(bundle), "--dataset-dir", str(source.parent / "imagesTr"), "--output-dir", str(out))
    for jpeg in sorted((source.parent / "imagesTr").glob("*.jpg")):
        written = np.asarray(Image.open(out / f"{jpeg.stem}_seg.png"))
        assert written.shape == np.asarray(Image.open(jpeg)).shape[:2]


def test_one_patch_in_three_is_forced_onto_foreground(tmp_path):
    rare = choose_sampling([0.97, 0.02, 0.01], ["background", "edema", "tumour"])[0]["class_ratios"]
    assert sum(rare) == pytest.approx(1.0, abs=1e-3)
    assert rare[1] == pytest.approx(2 / 3 * 0.02 + 1 / 6, abs=1e-4), "a rare class gets about a sixth of the centres"
    common = choose_sampling([0.78, 0.22], ["cell", "membrane"])[0]["class_ratios"]
    assert common == pytest.approx([0.52, 0.48], abs=1e-3)
    with pytest.raises(ValueError, match="at least two classes"):
        choose_sampling([1.0], ["background"])
    subset, why = choose_sampling([0.9, 0.1, 0.0, 0.0], ["background", "liver", "spleen", "kidney"])
    assert subset["class_ratios"] == pytest.approx([0.6, 0.4, 0.0, 0.0], abs=1e-3), "classes in no case: no centres"
    assert "2 class(es), spleen, kidney" in why

    source = write_png_dataset(tmp_path / "data")
    bundle, plan = _write(source, tmp_path)
    fractions = measure(read_dataset(source), progress=False).class_fractions()
    assert plan.sampling["class_ratios"] == choose_sampling(fractions, plan.label_names)[0]["class_ratios"]
    train = (bundle / "configs" / "train.json").read_text()
    crops = [step for step in _steps(json.loads(train)) if step.get("_target_") == "RandCropByLabelClassesd"]
    assert [crop["ratios"] for crop in crops] == [plan.sampling["class_ratios"]]
    assert "one patch in three" in (bundle / "docs" / "README.md").read_text()


def _steps(node):
    """Every dict inside a config, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _steps(value)
    elif isinstance(node, list):
        for value in node:
            yield from _steps(value)
