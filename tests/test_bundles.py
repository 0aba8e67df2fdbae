"""Both bundles run with the stock ``python -m monai.bundle`` on sample_data with small overrides.

Train (a few steps, small patches), resume, evaluate, infer, multi-process DDP on CPU (gloo), the model-zoo checks
(``check_properties``, ``verify_net_in_out``, ``ckpt_export``), and the EM bundle's paper recipe beside its planned
one. The shipped weights must load on CPU.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from bundle_caching import assert_caches_every_deterministic_step
from monai.bundle import ConfigParser, ConfigWorkflow

REPO = Path(__file__).resolve().parents[1]
EM = REPO / "bundles" / "em_membrane_segmentation"
MRI = REPO / "bundles" / "brain_tumor_mri_segmentation"
SAMPLE = REPO / "sample_data"
BRATS_CASE = "brats_2013_pat0004_1"


def _configs(bundle: Path, *names: str) -> str:
    return "[" + ",".join(f"'{bundle / 'configs' / n}'" for n in names) + "]"


def _run(bundle: Path, configs: list[str], overrides: dict, launcher: list[str] | None = None) -> str:
    command = [
        *(launcher or [sys.executable, "-m"]),
        "monai.bundle",
        "run",
        "--config_file",
        _configs(bundle, *configs),
    ]
    command += ["--meta_file", str(bundle / "configs" / "metadata.json"), "--bundle_root", str(bundle)]
    for key, value in overrides.items():
        command += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _em_split(tmp_path: Path, training=("00", "01"), validation=("02",)) -> Path:
    """Demo slices for the planned EM bundle, paths relative to ``sample_data/isbi2012_em``."""

    def items(ids):
        return [{"image": f"images/{i}.png", "label": f"labels/{i}.png"} for i in ids]

    path = tmp_path / "em_split.json"
    path.write_text(json.dumps({"training": items(training), "validation": items(validation)}))
    return path


def _em_overrides(tmp_path: Path, **extra) -> dict:
    return {
        "dataset_dir": str(SAMPLE / "isbi2012_em"),
        "split_file": str(_em_split(tmp_path)),
        "budget_minutes": 0.1,
        "epoch_length": 2,
        **extra,
    }


def _paper_overrides(tmp_path: Path, **extra) -> dict:
    return {
        "dataset_dir": str(SAMPLE / "isbi2012_em"),
        "train_ids": ["00", "01"],
        "val_ids": ["02"],
        "max_epochs": 1,
        "val_interval": 1,
        "tile_input": [188, 188],
        "val_roi": [380, 380],
        "ckpt_dir": str(tmp_path / "models"),
        "promote": True,
        "output_dir": str(tmp_path / "run"),
        **extra,
    }


def _brats_split(tmp_path: Path) -> Path:
    """The demo subject for training and validation, paths relative to ``sample_data/brats2013``."""
    case = {
        "image": [f"{BRATS_CASE}/Flair_subtrMeanDivStd.nii.gz", f"{BRATS_CASE}/T1c_subtrMeanDivStd.nii.gz"],
        "label": f"{BRATS_CASE}/OTMultiClass.nii.gz",
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"training": [case], "validation": [case]}))
    return path


def _copy(bundle: Path, tmp_path: Path) -> Path:
    """A copy of a shipped bundle: training writes its run folders and record into the bundle it runs."""
    copy = tmp_path / "bundle"
    for part in ("configs", "models", "docs"):
        shutil.copytree(bundle / part, copy / part)
    return copy


def _mri_overrides(tmp_path: Path, **extra) -> dict:
    return {
        "dataset_dir": str(SAMPLE / "brats2013"),
        "split_file": str(_brats_split(tmp_path)),
        "budget_minutes": 0.1,
        "epoch_length": 2,
        "samples_per_case": 1,
        "validate#mirroring#axes": [],  # the mirroring check is tested on planned bundles (tests/test_plan.py)
        **extra,
    }


def _history(run_dir: Path) -> list[dict]:
    with open(run_dir / "validation_history.csv") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------- training
def test_em_paper_recipe_trains_resumes_and_evaluates(tmp_path):
    """The paper's recipe kept beside the planned one (``*_paper.json``): valid U-Net, weight map, one tile."""
    _run(EM, ["train_paper.json"], _paper_overrides(tmp_path))
    assert (tmp_path / "models" / "model.pt").is_file()
    assert [int(r["epoch"]) for r in _history(tmp_path / "run")] == [1]
    for name in ("val_mean_dice", "val_mean_iou", "val_rand_error", "val_pixel_error"):
        assert 0.0 <= float(_history(tmp_path / "run")[0][name]) <= 1.0, name

    _run(EM, ["train_paper.json"], _paper_overrides(tmp_path, max_epochs=2, resume=True))
    rows = _history(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [1, 2], "resume must continue at epoch 2 and keep epoch 1's metrics"
    state = torch.load(tmp_path / "run" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 2 * 2  # two epochs of two training slices
    assert {"network", "optimizer", "lr_scheduler", "trainer", "history"} <= set(state)

    configs = ["train_paper.json", "evaluate_paper.json"]
    _run(EM, configs, _paper_overrides(tmp_path, output_dir=str(tmp_path / "eval")))
    summary = json.loads((tmp_path / "eval" / "metrics_summary.json").read_text())
    for name in ("val_mean_dice", "val_hd95", "val_asd", "val_rand_error", "val_rand_error_best_threshold"):
        assert name in summary["metrics"], name
    assert summary["metrics"]["val_rand_error_best_threshold"] <= summary["metrics"]["val_rand_error"] + 1e-6
    with open(tmp_path / "eval" / "val_mean_dice_raw.csv") as f:
        assert [Path(r["filename"]).name for r in csv.DictReader(f)] == ["02.png"]


def test_mri_bundle_trains_on_the_raw_brats_labels(tmp_path):
    """The planned MRI bundle on the demo subject's BRATS labels 0-4 (merged into the whole tumour by the bundle):
    a run folder with its best model, the shipped weights kept (no promote). Evaluation of planned bundles is run by
    ``tests/test_plan.py``; the shipped weights' Dice by ``tests/test_cli_segment.py``."""
    bundle = _copy(MRI, tmp_path)
    shipped = (bundle / "models" / "model.pt").read_bytes()
    _run(bundle, ["train.json"], _mri_overrides(tmp_path))
    (run,) = (bundle / "runs").iterdir()
    assert (run / "model.pt").is_file() and (bundle / "models" / "model.pt").read_bytes() == shipped
    (row,) = _history(run)
    assert 0.0 <= float(row["val_dice_1"]) <= 1.0 and "val_dice_lcc_1" in row


def test_multi_gpu_config_runs_two_processes_with_gloo_into_one_run_folder(tmp_path):
    """Two gloo processes train a copy of the planned EM bundle (skeleton-recall loss) into one new
    ``runs/train-*`` folder (rank 0 names it for both): the run's best model there, unwrapped from DDP, the shipped
    ``models/model.pt`` untouched (no promote)."""
    bundle = _copy(EM, tmp_path)
    shipped = (bundle / "models" / "model.pt").read_bytes()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"]
    _run(bundle, ["train.json", "multi_gpu_train.json"], _em_overrides(tmp_path), launcher=launcher)
    (run,) = (bundle / "runs").iterdir()
    assert run.name.startswith("train-")
    rows = _history(run)
    assert rows and all(0.0 <= float(r["val_mean_dice"]) <= 1.0 for r in rows)
    weights = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in weights), "the best model is saved unwrapped from DDP"
    assert (bundle / "models" / "model.pt").read_bytes() == shipped


# ------------------------------------------------------------------------------------------------- inference
@pytest.mark.parametrize("output_ext", [".png", ".nii.gz"])
def test_em_inference_writes_labels_probabilities_and_overlays(tmp_path, output_ext):
    out = tmp_path / "out"
    overrides = {"output_dir": str(out), "output_ext": output_ext, "save_probabilities": True}
    if output_ext == ".nii.gz":  # the shipped mirroring (4 passes) runs in the .png case; here the writers are tested
        overrides["tta_axes"] = []
    _run(EM, ["inference.json"], overrides)
    for stem in ("00", "01", "02"):
        seg = sitk.ReadImage(str(out / f"{stem}_seg{output_ext}"))
        labels = sitk.GetArrayFromImage(seg)
        assert labels.shape == (512, 512)
        assert set(np.unique(labels)) <= {0, 1}
        prob = np.squeeze(sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{stem}_prob.tif"))))
        assert prob.dtype == np.float32 and prob.shape == (512, 512) and 0 <= prob.min() <= prob.max() <= 1
        assert (out / f"{stem}_overlay.png").is_file()
    # label where the membrane probability is above one half; the shipped model finds the membranes (label 0 in the
    # ISBI files) on this training slice
    assert ((prob >= 0.5) == (labels > 0)).mean() > 0.999
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE / "isbi2012_em" / "labels" / "02.png"))) == 0
    assert 2 * (truth & (labels > 0)).sum() / (truth.sum() + (labels > 0).sum()) > 0.75


def test_mri_inference_returns_to_the_input_grid(tmp_path):
    out = tmp_path / "out"
    # default input: configs/dataset_sample.json → sample_data; tiles overlapping by a quarter keep the test short
    _run(MRI, ["inference.json"], {"output_dir": str(out), "inferer#overlap": 0.25, "tta_axes": []})
    [seg_path] = list(out.glob("*_seg.nii.gz"))
    seg = sitk.ReadImage(str(seg_path))
    flair = sitk.ReadImage(str(SAMPLE / "brats2013" / BRATS_CASE / "Flair_subtrMeanDivStd.nii.gz"))
    assert seg.GetSize() == flair.GetSize()
    assert np.allclose(seg.GetOrigin(), flair.GetOrigin(), atol=1e-4)
    assert np.allclose(seg.GetSpacing(), flair.GetSpacing(), atol=1e-6)
    assert np.allclose(seg.GetDirection(), flair.GetDirection(), atol=1e-6)
    assert sitk.GetArrayFromImage(seg).dtype == np.uint8
    assert list(out.glob("*_overlay.png"))


# ------------------------------------------------------------------------------------------------- model-zoo checks
@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
@pytest.mark.parametrize("workflow_type,config", [("train", "train.json"), ("inference", "inference.json")])
def test_config_workflow_properties(bundle, workflow_type, config, tmp_path):
    overrides = {"output_dir": str(tmp_path), "ckpt_dir": str(tmp_path)}
    if workflow_type == "inference":
        pass  # the inference configs default to sample_data/
    elif bundle == EM:
        overrides |= {"dataset_dir": str(SAMPLE / "isbi2012_em"), "split_file": str(_em_split(tmp_path))}
    else:
        overrides |= {"dataset_dir": str(SAMPLE / "brats2013"), "split_file": str(_brats_split(tmp_path))}
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / config),
        meta_file=str(bundle / "configs" / "metadata.json"),
        workflow_type=workflow_type,
        bundle_root=str(bundle),
        **overrides,
    )
    workflow.initialize()
    assert workflow.check_properties() in (None, [])


def test_em_paper_inference_config_loads_its_own_weights(tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(EM / "configs" / "inference_paper.json"),
        meta_file=str(EM / "configs" / "metadata.json"),
        workflow_type="inference",
        bundle_root=str(EM),
        output_dir=str(tmp_path),
    )
    workflow.initialize()
    assert workflow.check_properties() in (None, [])
    weights = torch.load(EM / "models" / "paper" / "model.pt", map_location="cpu", weights_only=True)
    network = workflow.parser.get_parsed_content("network_def")
    network.load_state_dict(weights)
    assert network.padding == "valid"


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_verify_net_in_out_and_torchscript_export(bundle, tmp_path):
    configs = str(bundle / "configs" / "inference.json")
    meta = str(bundle / "configs" / "metadata.json")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "verify_net_in_out",
            "network_def",
            "--meta_file",
            meta,
            "--config_file",
            configs,
            "--n",
            "1",
            "--bundle_root",
            str(bundle),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "data shape of network is verified" in (result.stdout + result.stderr)

    exported = tmp_path / "model.ts"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "ckpt_export",
            "network_def",
            "--filepath",
            str(exported),
            "--ckpt_file",
            str(bundle / "models" / "model.pt"),
            "--meta_file",
            meta,
            "--config_file",
            configs,
            "--bundle_root",
            str(bundle),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parser = ConfigParser()
    parser.read_config(configs)
    parser["bundle_root"] = str(bundle)
    network = parser.get_parsed_content("network_def").eval()
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
    scripted = torch.jit.load(str(exported), map_location="cpu")
    shape = (1, network.in_channels, *network.valid_input_shape((40,) * network.spatial_dims))
    x = torch.randn(shape)
    with torch.no_grad():
        assert (scripted(x) - network(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_metadata_passes_the_model_zoo_schema(bundle, shared_data, tmp_path):
    """MONAI's ``verify_metadata`` offline, with the schema the metadata names (a copy in ``../shared/schemas``)."""
    from monai.bundle import verify_metadata

    schema = shared_data.parent / "schemas" / "meta_schema_20240725.json"
    if not schema.is_file():
        pytest.skip(f"no copy of the model-zoo schema at {schema}")
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["schema"].endswith(schema.name)
    local = tmp_path / schema.name  # verify_metadata may write next to the schema; ../shared is read-only
    shutil.copy(schema, local)
    verify_metadata(meta_file=str(bundle / "configs" / "metadata.json"), filepath=str(local))
    broken = {k: v for k, v in meta.items() if k != "network_data_format"}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="network_data_format"):
        verify_metadata(meta_file=str(tmp_path / "broken.json"), filepath=str(local))


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_multi_gpu_overrides_are_the_planners(bundle):
    """The shipped bundles carry the planner's torchrun overrides, training's (run above) and inference's (run in
    test_cli_batch.py)."""
    from monai_unet.plan.override_configs import multi_gpu_config, multi_gpu_inference_config

    for name, planned in (
        ("multi_gpu_train.json", multi_gpu_config()),
        ("multi_gpu_inference.json", multi_gpu_inference_config()),
    ):
        assert json.loads((bundle / "configs" / name).read_text()) == planned, name


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_data_terms_and_codes_are_stated(bundle):
    """The model-zoo's docs/data_license.txt (the data is non-commercial) and SNOMED CT codes for every segment."""
    terms = (bundle / "docs" / "data_license.txt").read_text()
    assert "non-commercial" in terms.lower() and "cite" in terms.lower()
    pred = json.loads((bundle / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    classes = {k for k in pred["channel_def"] if k != "0"}
    assert set(pred["terminology"]) == classes
    assert all(entry["type"][0] == "SCT" and entry["type"][1] != "85756007" for entry in pred["terminology"].values())


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_readme_has_the_model_zoo_sections(bundle):
    headings = [line[3:] for line in (bundle / "docs" / "README.md").read_text().splitlines() if line.startswith("## ")]
    for section in ("Overview", "Data", "Training", "Performance", "System configuration", "Limitations", "License"):
        assert any(h.startswith(section) for h in headings), section


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_shipped_weights_are_small_and_load_on_cpu(bundle):
    weights = bundle / "models" / "model.pt"
    assert weights.stat().st_size <= 25 * 2**20
    state = torch.load(weights, map_location="cpu", weights_only=True)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    parser.get_parsed_content("network_def").load_state_dict(state)


@pytest.mark.parametrize("bundle", [EM, MRI], ids=["em", "mri"])
def test_training_caches_every_deterministic_step(bundle):
    """``CacheDataset`` stops caching at the first random step (a MONAI ``Compose`` counts as one): 0.6.0's MRI
    bundle resampled every scan at every training step."""
    assert_caches_every_deterministic_step(bundle)
