"""Re-plan the shipped MRI bundle with ``monai-unet plan`` and train the weights it ships.

``python -m benchmarks.ship_mri_bundle [--minutes 30] [--output DIR]`` (run alone on the machine: the planner
times the training step, and the budget is wall-clock):

1. writes ``outputs/datasets/brats2013/dataset.json`` beside links to the three subject folders of
   ``../shared/data/brats2013_deepmedic_subset``, with the whole tumour as one class by merged label values
   (``{"background": 0, "whole tumour": [1, 2, 3, 4]}``, :func:`benchmarks.planned_vs_stock.brats_dataset`), so the
   bundle's ``split.json`` names files relative to a folder of subject folders, as the BRATS copy is laid out;
2. ``monai-unet plan --fold all`` (train on all three subjects: the 3-fold cross-validation in
   ``benchmarks/RESULTS.md`` measured this recipe against the stock one; these are the final weights);
3. the parts the planner cannot know: inference reads ``configs/dataset_sample.json`` (the demo subject in
   ``sample_data/``) and writes overlays, training's ``dataset_dir`` is the shared BRATS folder (override it with
   yours), the metadata carries the package version and the bundle's changelog;
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
    "re-planned by monai-unet plan (instance norm, 1.56 mm, Dice + CE, time-driven poly decay) and trained on all "
    "three BRATS 2013 subjects for {minutes:g} minutes on 2 CPU cores; labels 1-4 merged into the whole tumour"
)


def _edit(path: Path, **values) -> None:
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=4) + "\n")


def ship_edits(bundle: Path, minutes: float) -> None:
    """What the planner cannot infer: the demo input, the shared training folder, version and changelog."""
    from monai_unet import __version__

    shutil.copy(SHIPPED / "configs" / "dataset_sample.json", bundle / "configs" / "dataset_sample.json")
    _edit(
        bundle / "configs" / "inference.json",
        dataset_dir="$os.path.join(@bundle_root, 'configs', 'dataset_sample.json')",
        save_overlays=True,
    )
    shared = "$os.path.join(@bundle_root, '..', '..', '..', 'shared', 'data', 'brats2013_deepmedic_subset')"
    _edit(bundle / "configs" / "train.json", dataset_dir=shared)
    meta_path = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    old = json.loads((SHIPPED / "configs" / "metadata.json").read_text())
    meta["version"] = __version__
    meta["changelog"] = {__version__: CHANGE.format(minutes=minutes), **old["changelog"]}
    meta_path.write_text(json.dumps(meta, indent=4) + "\n")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "shipped" / "brain_tumor_mri_segmentation")
    args = parser.parse_args(argv)
    dataset = brats_dataset()
    cli = [sys.executable, "-m", "monai_unet.cli.main"]
    bundle = args.output.resolve()
    plan = ["plan", str(dataset), "-o", str(bundle), "--fold", "all", "--budget-min", str(args.minutes)]
    subprocess.run([*cli, *plan, "--name", NAME, "--force", "--no-progress"], check=True)
    ship_edits(bundle, args.minutes)
    subprocess.run([*cli, "train", "--bundle", str(bundle), f"dataset_dir={dataset.parent}"], check=True)
    print(bundle)
    return bundle


if __name__ == "__main__":
    main()
