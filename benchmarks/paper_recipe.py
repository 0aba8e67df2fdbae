"""The paper's recipe (``bundles/em_membrane_segmentation/configs/train_paper.json``) on the ISBI split of the
planned-vs-stock comparison, scored by the same code.

    python -m benchmarks.paper_recipe --split outputs/planned_vs_stock/isbi_fold4_quiet/split.json \
        --minutes 20 --output-dir outputs/paper_recipe/sgd

Trains the bundle's ``train_paper.json`` (valid U-Net, border weight map, one 508² tile per step, SGD with momentum
0.99) with the stock ``python -m monai.bundle run`` for the wall-clock budget (validation included), writes the
validation slices' labels and membrane probabilities with ``inference_paper.json``, and scores them with
``benchmarks.scoring.score_split`` and the ISBI measures of ``benchmarks.planned_vs_stock``: the numbers sit beside
``comparison.json`` of that folder. Like the stock ``BasicUNet`` baseline, the recipe keeps the epoch with the best
membrane Dice on the held-out slices (its ``val_ids``); the planned bundle selects on slices of its own training set.
Any ``key=value`` after the options overrides the training config (e.g. ``learning_rate=0.001``).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.planned_vs_stock import _isbi_scores
from benchmarks.scoring import finite_json, load_split, score_split

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "em_membrane_segmentation"
CLASSES = {0: {"name": "background", "values": [255]}, 1: {"name": "membrane", "values": [0]}}


def _ids(items: list[dict], images: Path) -> list[str]:
    """The slice ids of ``items``, refusing images outside the recipe's ``dataset_dir/images`` folder."""
    ids = []
    for item in items:
        image = Path(item["image"]).resolve()
        if image.parent != images.resolve() or image.suffix != ".png":
            raise SystemExit(f"{image}: the paper's recipe reads slices from {images} only")
        ids.append(image.stem)
    return ids


def _bundle_run(config: str, overrides: dict, log: Path) -> float:
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLE / "configs" / config)]
    command += ["--meta_file", str(BUNDLE / "configs" / "metadata.json"), "--bundle_root", str(BUNDLE)]
    for key, value in overrides.items():
        command += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(" ".join(command) + "\n")
        f.flush()
        subprocess.run(command, check=True, stdout=f, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def _curve(history: Path) -> list[dict]:
    """Validation membrane Dice per validated epoch (the paper's config logs epochs, not elapsed seconds)."""
    with open(history, newline="") as f:
        return [{"epoch": int(row["epoch"]), "val_mean_dice": float(row["val_mean_dice"])} for row in csv.DictReader(f)]


def _class_index_maps(predictions: Path, cases: list[str], folder: Path) -> Path:
    """The paper bundle writes viewable label PNGs (membrane 255, the rest 0); the scoring code reads class indices
    (1 = membrane) beside the membrane probabilities: ``folder`` holds both, the inputs stay as written."""
    import numpy as np
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for case in cases:
        labels = np.asarray(Image.open(predictions / f"{case}_seg.png"))
        Image.fromarray((labels > 0).astype(np.uint8)).save(folder / f"{case}_seg.png")
        shutil.copy(predictions / f"{case}_prob.tif", folder / f"{case}_prob.tif")
    return folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=Path, required=True, help="split.json of a planned_vs_stock isbi run")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--score-only", action="store_true", help="infer and score the run already in the folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides")
    args = parser.parse_args(argv)
    out = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    split = load_split(args.split)
    images = (ROOT.parent / "shared" / "data" / "isbi2012_em_membranes" / "images").resolve()
    val_ids = _ids(split["validation"], images)
    overrides: dict = {
        "dataset_dir": str(images.parent),
        "train_ids": _ids(split["training"], images),
        "val_ids": val_ids,
        "ckpt_dir": str(out / "models"),
        "output_dir": str(out / "run"),
        "time_limit_s": round(args.minutes * 60),
        "seed": args.seed,
    }
    for pair in args.overrides:
        key, _, value = pair.partition("=")
        overrides[key] = json.loads(value)
    log = out / "log.txt"
    seconds = {} if args.score_only else {"train": _bundle_run("train_paper.json", overrides, log)}
    val_images = out / "validation_images"
    val_images.mkdir(exist_ok=True)
    for case in val_ids:
        link = val_images / f"{case}.png"
        if not link.exists():
            link.symlink_to(images / f"{case}.png")
    seconds["infer"] = _bundle_run(
        "inference_paper.json",
        {
            "ckpt_path": str(out / "run" / "model.pt"),
            "dataset_dir": str(val_images),
            "output_dir": str(out / "predictions"),
            "save_probabilities": True,
            "save_overlays": "$False",
        },
        log,
    )
    scored = _class_index_maps(out / "predictions", val_ids, out / "scored")
    scores = score_split(scored, split, CLASSES)
    scores["isbi"] = _isbi_scores(scored, split)
    result = {
        "recipe": "train_paper.json",
        "overrides": {k: v for k, v in overrides.items() if k not in ("train_ids", "val_ids")},
        "seconds": seconds,
        "scores": scores,
        "curve": _curve(out / "run" / "validation_history.csv"),
    }
    (out / "metrics.json").write_text(json.dumps(finite_json(result), indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=1))
    return result


if __name__ == "__main__":
    main()
