"""Re-plan the shipped MRI bundle with ``monai-unet plan`` and train the weights it ships.

``python -m benchmarks.ship_mri_bundle [--minutes 30] [--output DIR]`` (run alone on the machine: the planner
times the training step, and the budget is wall-clock):

1. writes ``outputs/datasets/brats2013/dataset.json`` beside links to the three subject folders of
   ``../shared/data/brats2013_deepmedic_subset``, with the whole tumour as one class by merged label values
   (``{"background": 0, "whole tumour": [1, 2, 3, 4]}``, :func:`benchmarks.planned_vs_stock.brats_dataset`), so the
   bundle's ``split.json`` names files relative to a folder of subject folders, as the BRATS copy is laid out;
2. ``monai-unet plan --fold 0 --budget-min 20 --norm batch``: the recipe exactly as the 3-fold cross-validation in
   ``benchmarks/RESULTS.md`` measured it against the stock one (planning with ``--fold all`` would price validation
   on three volumes into the calibration and choose a smaller patch than the one that was cross-validated); then
   ``configs/split.json`` lists all three subjects for training and validation (as ``--fold all`` does) and the
   training budget is ``--minutes`` (30: the stock MRI recipe's), the final weights after cross-validation;
3. the parts the planner cannot know: inference reads ``configs/dataset_sample.json`` (the demo subject in
   ``sample_data/``) and writes overlays, training's ``dataset_dir`` is the shared BRATS folder (override it with
   yours), the metadata carries the package version and the bundle's changelog, the docs carry the data's terms
   with citations, the machine and the limitations;
4. ``monai-unet train`` (its first run writes ``models/model.pt``), then the folder is ready to replace
   ``bundles/brain_tumor_mri_segmentation`` (this script does not replace it; check the record first).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.planned_vs_stock import brats_dataset

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "bundles" / "brain_tumor_mri_segmentation"
NAME = "Brain tumour MRI segmentation (planned 3D U-Net, FLAIR + T1c, whole tumour)"
CHANGE = (
    "new weights: re-planned by monai-unet {version} (the 3-fold cross-validated recipe: {norm} norm, 1.56 mm, "
    "Dice + CE, time-driven poly decay, foreground oversampling planned from the class fractions, bfloat16 training "
    "where the CPU does it natively, validation and the best model on a moving average of the weights, patch and "
    "iterations sized by the calibration against the run) and trained on "
    "all three BRATS 2013 subjects for {minutes:g} minutes on 2 CPU cores; labels 1-4 merged into the whole tumour"
)


def edit_json(path: Path, **values) -> None:
    """Set top-level ``values`` in the JSON file ``path`` (a bundle config or plans.json)."""
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=4) + "\n")


RESULTS = """
## Performance: how the shipped weights were made and what they scored

`models/model.pt` was trained by `python -m benchmarks.ship_mri_bundle --minutes {minutes:g}`: the planner's
recipe for fold 0 at 20 minutes (written by `benchmarks.planned_vs_stock.brats_dataset`), then `monai-unet train`
for {minutes:g} minutes on 2 CPU cores with all three BRATS 2013 subjects of
`../shared/data/brats2013_deepmedic_subset` in `configs/split.json` (FLAIR + T1c; labels 1-4 merged into the
whole tumour by the dataset's `labels`). The validation metric in `configs/plans.json` is therefore measured on
training subjects, not held out. Training's
`dataset_dir` defaults to that shared folder; give yours with `dataset_dir=...` (subject folders named as in
`configs/split.json`). Inference defaults to `configs/dataset_sample.json`, the demo subject in `sample_data/`.

The recipe was measured before shipping by 3-fold cross-validation, one subject held out per fold, 20 minutes per
fold, against the stock MONAI recipe (spleen-bundle `UNet`) on the same folds, the same machine and with the same
scoring code (`benchmarks/RESULTS.md`, eighteenth session, 2026-12-05; `python -m benchmarks.planned_vs_stock brats
--fold K`): monai-unet 0.10.0's planner with `--norm batch` (patch 80 × 80 × 64, batch 2, 1,131-1,189 iterations,
bfloat16 training, weight averaging), beside the same plans with instance norm (the planner's default):

| held-out subject | Dice, batch | Dice, instance | Dice, stock | HD95 (mm), batch | HD95, instance | HD95, stock |
|---|---|---|---|---|---|---|
| pat0004 | 0.941 | **0.943** | 0.920 | 3.3 | **3.2** | 3.7 |
| pat0005 | 0.617 | **0.664** | 0.562 | 19.7 | **14.9** | 66.8 |
| pat0006 | **0.895** | 0.829 | 0.891 | **5.4** | 10.8 | 6.9 |
| mean | **0.818** | 0.812 | 0.791 | **9.5** | 9.6 | 25.8 |

Batch norm is the only recipe measured so far that beats the stock one on every fold, on both measures.

Three subjects are far too few for a general model: these weights show the pipeline working end to end on real
MRI, not a clinical-grade segmenter. Data terms: CC BY-NC-SA 3.0 CH, non-commercial research use with
attribution (Menze et al. 2015; see `LICENSE`). Not for clinical use.
"""


SYSTEM = """## System configuration

3D U-Net ({norm} norm) at 1.56 mm on FLAIR + T1c; planned, timed and trained on 2 CPU cores ({machine}) for
{minutes:g} minutes of wall clock, the forward pass in bfloat16 (`precision`: `auto`, where the CPU or GPU does it
natively; `monai-unet train --bundle ... precision=fp32` trains in float32). Inference runs on CPU or CUDA
(`--device`); a 240 × 240 × 155 subject takes tens of seconds on 2 cores (eight times that with test-time mirroring,
which training turns on only where it gains 0.002 validation Dice: `configs/plans.json`, `postprocessing.mirroring`;
`--tta` / `--no-tta` override it).

## Limitations

Research use only, not for clinical decisions. Trained on three BRATS 2013 subjects (skull-stripped, z-scored FLAIR
and T1c as in the DeepMedic copy): a demonstration of the pipeline on real MRI, not a general tumour segmenter; it
expects inputs prepared the same way.

"""


def machine() -> str:
    """The CPU in words, as the docs name it: model name and its bfloat16 instructions (Linux ``/proc/cpuinfo``)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = [name for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16")) if flag in info]
    return f"{model or 'CPU'}" + (f" with {' and '.join(flags)}" if flags else "")


def keep_terms(previous: Path, bundle: Path) -> None:
    """Keep ``previous``'s code licence and data terms (with their citations) in ``bundle``: the planner writes only a
    short data note, and the terms bind the weights trained on the data."""
    shutil.copy(previous / "LICENSE", bundle / "LICENSE")
    shutil.copy(previous / "docs" / "data_license.txt", bundle / "docs" / "data_license.txt")


def ship_edits(bundle: Path, minutes: float, dataset: Path, norm: str) -> None:
    """What the planner cannot infer: all three subjects and the longer budget for the final weights, the demo
    input, the shared training folder, version and changelog, the data's terms, the shipped path in the README, the
    machine, the limitations and how the weights were made."""
    from monai_unet import __version__

    split_path = bundle / "configs" / "split.json"
    split = json.loads(split_path.read_text())
    every = sorted(split["training"] + split["validation"], key=lambda item: item["label"])
    split_path.write_text(json.dumps({"training": every, "validation": every}, indent=4) + "\n")
    validation_ratio = len(every) / len(split["validation"])
    plans_path = bundle / "configs" / "plans.json"
    plans = json.loads(plans_path.read_text())
    names = sorted(plans["plan"]["split"]["training"] + plans["plan"]["split"]["validation"])
    plans["plan"]["split"] = {
        "mode": "all subjects (final weights after the 3-fold cross-validation of this recipe)",
        "fold": "all",
        "training": names,
        "validation": names,
    }
    plans["dataset"] = "outputs/datasets/brats2013/dataset.json (benchmarks.planned_vs_stock.brats_dataset)"
    plans_path.write_text(json.dumps(plans, indent=4) + "\n")
    keep_terms(SHIPPED, bundle)

    shutil.copy(SHIPPED / "configs" / "dataset_sample.json", bundle / "configs" / "dataset_sample.json")
    edit_json(
        bundle / "configs" / "inference.json",
        dataset_dir="$os.path.join(@bundle_root, 'configs', 'dataset_sample.json')",
        save_overlays=True,
    )
    shared = "$os.path.join(@bundle_root, '..', '..', '..', 'shared', 'data', 'brats2013_deepmedic_subset')"
    train = json.loads((bundle / "configs" / "train.json").read_text())
    budget = train["budget"]
    edit_json(
        bundle / "configs" / "train.json",
        dataset_dir=shared,
        budget_minutes=minutes,
        epoch_length=round(train["epoch_length"] * minutes / 20),  # the planned number of validations
        budget={**budget, "validation_estimate_s": budget["validation_estimate_s"] * validation_ratio},
    )
    meta_path = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    old = json.loads((SHIPPED / "configs" / "metadata.json").read_text())
    meta["version"] = __version__
    change = CHANGE.format(version=__version__, minutes=minutes, norm=norm)
    meta["changelog"] = {__version__: change, **old["changelog"]}
    meta_path.write_text(json.dumps(meta, indent=4) + "\n")
    readme = bundle / "docs" / "README.md"
    text = readme.read_text().replace(str(bundle), "bundles/brain_tumor_mri_segmentation")
    text = text.replace(str(dataset), "outputs/datasets/brats2013/dataset.json")
    text = text.replace("# 20 minutes of wall clock", f"# {minutes:g} minutes of wall clock")
    # the machine and the limitations are the shipped weights', not the planner's generic text
    start, end = text.index("## System configuration"), text.index("## License")
    text = text[:start] + SYSTEM.format(minutes=minutes, norm=norm, machine=machine()) + text[end:]
    readme.write_text(text + RESULTS.format(minutes=minutes))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--norm", choices=("batch", "instance"), default="batch", help="the cross-validated winner")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "shipped" / "brain_tumor_mri_segmentation")
    args = parser.parse_args(argv)
    dataset = brats_dataset()
    cli = [sys.executable, "-m", "monai_unet.cli.main"]
    bundle = args.output.resolve()
    plan = ["plan", str(dataset), "-o", str(bundle), "--fold", "0", "--budget-min", "20", "--norm", args.norm]
    subprocess.run([*cli, *plan, "--name", NAME, "--force", "--no-progress"], check=True)
    ship_edits(bundle, args.minutes, dataset, args.norm)
    subprocess.run([*cli, "train", "--bundle", str(bundle), f"dataset_dir={dataset.parent}"], check=True)
    print(bundle)
    return bundle


if __name__ == "__main__":
    main()
