"""Writing a plan as a MONAI bundle folder: the configs (:mod:`~monai_unet.plan.configs`), metadata, the split,
``plans.json``, docs and terms, built in a temporary folder and renamed into place.

``evaluate.json`` overrides ``train.json`` (the model-zoo layout); ``multi_gpu_train.json`` overrides it for
``torchrun``. ``configs/split.json`` holds the training and validation items (paths relative to ``dataset_dir``),
read with MONAI's ``load_decathlon_datalist``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from monai_unet.plan.configs import train_config
from monai_unet.plan.dataset import PlanDataset
from monai_unet.plan.fingerprint import Fingerprint, summarise_shapes
from monai_unet.plan.geometry import pooling_divisors
from monai_unet.plan.inference_config import inference_config
from monai_unet.plan.override_configs import evaluate_config, multi_gpu_config, multi_gpu_inference_config
from monai_unet.plan.recipe import Plan

__all__ = ["LOGGING_CONF", "PALETTE", "metadata", "split_file", "write_bundle"]

#: Segment colours (RGB in [0, 1]) for classes 1, 2, ...: distinct, colour-blind-friendly first (Okabe-Ito).
PALETTE = [
    [0.90, 0.62, 0.00],
    [0.34, 0.71, 0.91],
    [0.00, 0.62, 0.45],
    [0.94, 0.89, 0.26],
    [0.00, 0.45, 0.70],
    [0.84, 0.37, 0.00],
    [0.80, 0.47, 0.65],
    [0.60, 0.60, 0.60],
]

#: ``configs/logging.conf``: the model zoo's console logging (what ``python -m monai.bundle run`` picks up).
LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def _values_text(values: int | list[int]) -> str:
    """A class's label value(s) in the files: ``3``, or ``1, 2, 4`` for merged values."""
    return ", ".join(map(str, values)) if isinstance(values, list) else str(values)


def metadata(plan: Plan, dataset: PlanDataset, name: str) -> dict[str, Any]:
    """``configs/metadata.json`` (MONAI bundle schema): inputs from the fingerprint, outputs from ``labels``."""
    import monai
    import numpy
    import torch

    from monai_unet import __version__

    # multiples of twice the pooling factors: instance norm needs more than one voxel at the bottleneck
    shape = [f"{2 * d}*n" for d in pooling_divisors(plan.network["pools"], plan.spatial_dims)]
    channel_def = {str(i): n for i, n in enumerate(plan.label_names)}
    colors = {str(i): PALETTE[(i - 1) % len(PALETTE)] for i in range(1, plan.num_classes)}
    modality = ", ".join(dataset.modality) or "unknown"
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": f"planned by monai-unet plan on {date.today().isoformat()} from {dataset.source}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "required_packages_version": {"monai-unet": __version__},
        "supported_apps": {},
        "name": name,
        "task": f"Segmentation of {', '.join(plan.label_names[1:])} in {modality} ({plan.spatial_dims}D)",
        "description": (
            f"A {plan.spatial_dims}D U-Net planned by monai-unet from the dataset '{dataset.name}': recipe derived "
            "from the data and a calibrated time budget (configs/plans.json says why each value is what it is)."
        ),
        "authors": "monai-unet plan",
        "copyright": "see LICENSE (the training data's terms)",
        "data_source": dataset.name + (f": {dataset.info['reference']}" if "reference" in dataset.info else ""),
        "data_type": "image files",
        "image_classes": ", ".join(f"{i} = {n}" for i, n in enumerate(plan.channel_names)),
        "label_classes": ", ".join(
            f"{_values_text(v)} = {n}" for v, n in zip(plan.label_values, plan.label_names, strict=True)
        ),
        "pred_classes": ", ".join(f"{i} = {n}" for i, n in enumerate(plan.label_names)),
        "eval_metrics": {},
        "intended_use": "Research only; not for clinical use. " + (dataset.terms or "The dataset states no terms."),
        "references": [
            "Ronneberger O, Fischer P, Brox T. U-Net: Convolutional Networks for Biomedical Image Segmentation. "
            "MICCAI 2015.",
            "Isensee F, Jaeger PF, Kohl SAA, Petersen J, Maier-Hein KH. nnU-Net: a self-configuring method for deep "
            "learning-based biomedical image segmentation. Nature Methods 2021; 18:203-211.",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": modality,
                    "num_channels": plan.in_channels,
                    "spatial_shape": shape,
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": True,
                    "channel_def": {str(i): n for i, n in enumerate(plan.channel_names)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": plan.num_classes,
                    "spatial_shape": shape,
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": True,
                    "channel_def": channel_def,
                    "label_colors": colors,
                    "terminology": {str(i): entry for i, entry in sorted(dataset.terminology.items())},
                }
            },
        },
    }


def split_file(plan: Plan, dataset: PlanDataset) -> dict[str, list[dict]]:
    """``configs/split.json``: the items of each side, paths relative to ``dataset_dir``; ``validation_in_training``
    when training validates a subset of the validation cases (:mod:`~monai_unet.plan.validation_budget`)."""
    by_name = {c.name: c for c in dataset.all_cases()}

    def items(names: list[str]) -> list[dict]:
        return [{"image": by_name[n].relative["image"], "label": by_name[n].relative["label"]} for n in names]

    sides = ("training", "validation", "validation_in_training")
    return {side: items(plan.split[side]) for side in sides if side in plan.split}


def _ignore_text(plan: Plan) -> str:
    """The README's line on the ignore label (empty without one)."""
    if plan.ignore_value is None:
        return ""
    return (
        f"\nLabel value {plan.ignore_value} marks voxels nobody annotated (the dataset's `ignore` label, the 3D "
        "U-Net's sparse annotation): they count in neither the training loss nor any validation metric, and the "
        "network predicts a class for every voxel.\n"
    )


def _regions_text(plan: Plan, dataset: PlanDataset) -> str:
    """The README's paragraph on nnU-Net v2's overlapping regions (empty without them)."""
    if not dataset.regions:
        return ""
    rows = "\n".join(
        f"| {name} | {', '.join(plan.label_names[c] for c in classes)} |" for name, classes in dataset.regions.items()
    )
    return f"""
The dataset's `labels` name overlapping regions (nnU-Net v2's region form). The network learns one class per set
of label values that belong to the same regions (above), so each region is a union of classes. Validation and
`evaluate` score each region's Dice (`val_region_dice_<name>`) and their mean (`val_mean_region_dice`), which selects
the model. The label map the bundle writes holds the classes above.

| region | the union of |
|---|---|
{rows}
"""


def _readme(plan: Plan, dataset: PlanDataset, fp: Fingerprint, name: str, folder: Path) -> str:
    class_rows = "\n".join(
        f"| {i} | {_values_text(v)} | {n} |"
        for i, (v, n) in enumerate(zip(plan.label_values, plan.label_names, strict=True))
    )
    shapes = summarise_shapes(fp.cases)
    reasons = "\n".join(f"- **{key.replace('_', ' ')}**: {text}" for key, text in plan.reasons.items())
    dims = plan.spatial_dims
    ext = ".png" if dims == 2 else ".nii.gz"
    terms = dataset.terms or "The dataset.json states no licence or terms; check them with the data's provider."
    output_form = "PNG of the input's size" if dims == 2 else "NIfTI on the input's grid"
    fractions = ", ".join(f"{n} {f:.3%}" for n, f in zip(plan.label_names, fp.class_fractions(), strict=True))
    return f"""# {name}

## Overview

Planned by `monai-unet plan` from `{dataset.source}` ({len(dataset.training)} training and
{len(dataset.validation)} validation cases listed; {dims}D, {plan.in_channels} input channel(s), {plan.num_classes}
classes). Research use only, not for clinical decisions.

## Commands

    monai-unet train --bundle {folder}          # {plan.budget["minutes"]:g} minutes of wall clock, validation included
    monai-unet evaluate --bundle {folder}       # the best model on the validation cases, on their own grids
    monai-unet infer --bundle {folder} --dataset-dir TEST.json_or_folder --output-dir OUT
    monai-unet segment IMAGE... -o OUT{ext} --bundle {folder}

or with the stock runner:

    python -m monai.bundle run --config_file {folder}/configs/train.json \\
        --meta_file {folder}/configs/metadata.json --bundle_root {folder}

`infer` writes `<case>_seg{ext}` per case (class indices; {output_form}).
Each training run writes into its own folder, `runs/train-<date>-<time>/`: its checkpoint (`checkpoint_last.pt`;
`monai-unet train --bundle B resume=true` continues the latest run), `validation_history.csv`,
`training_summary.json`, `training_record.json` and its best network, `model.pt`. The bundle's `models/model.pt`
(what evaluation and inference load) and the training record and post-processing decision in `configs/plans.json`
are written by the first run, and afterwards only by a run given `--promote` (stock runner: `--promote true`).
`dataset_dir` in the configs points at the dataset this bundle was planned from; override it (`--dataset-dir` or
`dataset_dir=...`) to move the data. It means the same in every config: the dataset's folder, or its `dataset.json`
(relative paths are then read from the JSON's own folder). `monai-unet evaluate --dataset-dir held_out.json` scores
the JSON's `test` list when every item has a `label` (held-out cases; training never reads that list), else the
bundle's validation cases.

## Data

### Classes

| class | label value(s) in the files | name |
|---|---|---|
{class_rows}
{_ignore_text(plan)}{_regions_text(plan, dataset)}
### The data as measured

| | min | median | max |
|---|---|---|---|
| shape (voxels) | {shapes["shape_min"]} | {shapes["shape_median"]} | {shapes["shape_max"]} |
| spacing (mm) | {shapes["spacing_min"]} | {shapes["spacing_median"]} | {shapes["spacing_max"]} |

Class fractions of all voxels: {fractions}.

## Training: what was chosen, and why

{reasons}

Every value is in `configs/plans.json` (with the fingerprint); the configs read top to bottom and share one
definition of the network and of the preprocessing.

## Deploying with MONAI Deploy

`configs/inference.json` keeps what it computes apart from what it writes: `postprocessing` returns `pred`, the
class indices on the input's own grid, and writes nothing; the files (labels, probabilities, overlays) are written
by the separate `saving` Compose, which the `evaluator` runs after it. MONAI Deploy's `MonaiBundleInferenceOperator`
reads `preprocessing` and `postprocessing`, drops the transforms named `LoadImage`/`SaveImage` (our loader is
MONAI's `LoadImaged` with `monai_unet.io.SimpleITKReader`) and loads the image itself, so a deployed app gets the
label map in memory and the bundle writes no file of its own. Export the network for it with
`monai-unet export --bundle {folder} --format torchscript` (Deploy loads `models/model.ts`).

## Performance

Training writes its record into `configs/plans.json` (`training`: iterations, validations, the best epoch and its
validation metric; `postprocessing`: the keep-largest-component and test-time-mirroring decisions with their
measured gains) and into its run folder (`validation_history.csv`). The validation cases are the ones named in
`configs/split.json`; score held-out cases with `monai-unet evaluate --dataset-dir held_out.json`.

## System configuration

Planned and timed on `{plan.device}` for a budget of {plan.budget["minutes"]:g} minutes of wall clock (the patch,
batch and network were chosen so that this budget holds enough iterations on that machine; plan again on a
different machine). Inference runs on CPU or CUDA (`--device`); requires `monai-unet`, PyTorch and MONAI as
listed in `configs/metadata.json`.

## Limitations

Research use only, not for clinical decisions. Trained on {len(dataset.training)} case(s) of one dataset: how it
does on other scanners, protocols or populations is not known. The recipe was derived from the data by rules and a
timing, not tuned by hand.

## License

Code and configuration: Apache License 2.0 (monai-unet). The weights are trained on the data below and carry its
terms:

{terms}
"""


def write_bundle(
    folder: str | Path, plan: Plan, dataset: PlanDataset, fp: Fingerprint, name: str, force: bool = False
) -> Path:
    """Write the bundle into ``folder`` (built in a temporary folder beside it, then renamed into place).

    Raises:
        FileExistsError: ``folder`` exists and ``force`` is False.
    """
    target = Path(folder).resolve()
    if target.exists() and not force:
        raise FileExistsError(f"{target}: already exists; choose another folder or pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".plan", dir=target.parent))
    try:
        configs = staging / "configs"
        configs.mkdir()
        (staging / "models").mkdir()
        (staging / "docs").mkdir()
        plans = {
            "planned_with": "monai-unet plan",
            "dataset": str(dataset.source),
            "labels_from": "the label files' values (the dataset declares no 'labels')"
            if dataset.labels_found
            else "the dataset's 'labels'",
            "plan": plan.to_dict(),
            **({"regions": {n: list(c) for n, c in dataset.regions.items()}} if dataset.regions else {}),
            "postprocessing": {
                "keep_largest_labels": [],
                "tta_axes": [],
                "decided": False,
                "reason": "decided after training",
            },
            "training": None,
            "fingerprint": fp.to_dict(),
        }
        files = {
            configs / "train.json": train_config(plan, dataset),
            configs / "evaluate.json": evaluate_config(plan, dataset.regions),
            configs / "inference.json": inference_config(plan, dataset),
            configs / "multi_gpu_train.json": multi_gpu_config(),
            configs / "multi_gpu_inference.json": multi_gpu_inference_config(),
            configs / "metadata.json": metadata(plan, dataset, name),
            configs / "split.json": split_file(plan, dataset),
            configs / "plans.json": plans,
        }
        for path, content in files.items():
            path.write_text(json.dumps(content, indent=4) + "\n", encoding="utf-8")
        (configs / "logging.conf").write_text(LOGGING_CONF, encoding="utf-8")
        (staging / "docs" / "README.md").write_text(_readme(plan, dataset, fp, name, target), encoding="utf-8")
        license_text = dataset.terms or "The dataset this bundle was planned from states no licence or terms."
        data_terms = (
            f"Data terms of '{dataset.name}' ({dataset.source}):\n\n{license_text}\n\n"
            "The weights trained into models/ inherit these terms.\n"
        )
        (staging / "LICENSE").write_text(data_terms, encoding="utf-8")
        if dataset.terms:  # the model-zoo's place for the training data's terms
            (staging / "docs" / "data_license.txt").write_text(data_terms, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
