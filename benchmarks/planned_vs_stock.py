"""A planned bundle against a stock-MONAI recipe: same split, same wall-clock budget, same scoring code.

``python -m benchmarks.planned_vs_stock TASK [--minutes 20] [--fold K] [--seed S] [--output-dir DIR] [--skip-stock]
[--stock-from STORED.json]``

TASK is ``acdc``, ``cvc``, ``isbi`` or ``brats`` (datasets in ``../shared/data``; ISBI through
``benchmarks/datasets/isbi2012/dataset.json``; BRATS as the whole-tumour
task of the MRI bundle and the stock recipe: a ``dataset.json`` in ``outputs/datasets/brats2013`` that merges label
values 1-4 into one class, beside links to the subject folders; 3 folds, one subject each), or ``brats_labels``
(BRATS with its four labels as four classes, ours only: ``--skip-stock``). Steps, each a real command:

1. ``monai-unet plan DATASET -o DIR/bundle --budget-min M --fold K`` (the split is the planner's: the dataset's
   validation list, or fold K of its contiguous folds);
2. ``monai-unet train --bundle DIR/bundle --output-dir DIR/ours/run --promote`` (the planner's time budget ends it,
   validation included; the bundle's ``models/model.pt`` becomes the run's best model, also where a reused bundle
   was trained before, so the weights scored are always this run's);
3. ``monai-unet infer`` on the validation cases → ``DIR/ours/predictions/<case>_seg.*`` on each input's grid;
4. the stock recipe (``benchmarks.baseline_<task>``) on the same split (``DIR/split.json``) for the same minutes
   → ``DIR/stock/predictions``;
5. both scored by :mod:`benchmarks.scoring` into ``DIR/ours/metrics.json`` and ``DIR/stock/metrics.json``, and a
   side-by-side ``DIR/comparison.json`` with each run's time-to-accuracy curve (validation Dice against seconds)
   and the seconds each needed to reach the other's final validation Dice.

``--stock-from STORED.json`` pairs this run with the stock side of a stored ``comparison.json`` (same task and fold,
e.g. ``benchmarks/results/planned_vs_stock_brats_fold0.json``) instead of training the stock recipe again: how a
half-budget run of ours meets the stock's full budget. With ``--skip-ours`` and an existing ``--output-dir`` it only
re-assembles ``comparison.json``. Our minutes are then read from the plan, the stock's from the stored file.

Run one task at a time on a quiet machine (the budgets are wall clock).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.scoring import finite_json, load_split, score_split
from benchmarks.time_to_accuracy import summarise
from monai_unet.plan.record import history_rows

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

BRATS = ROOT / "outputs" / "datasets" / "brats2013"
#: SNOMED CT codes of the whole tumour (as the shipped MRI bundle states them)
BRATS_TUMOUR_CODES = {
    "category": ["SCT", "49755003", "Morphologically Abnormal Structure"],
    "type": ["SCT", "108369006", "Neoplasm"],
    "region": ["SCT", "12738006", "Brain"],
}
TASKS = {
    "acdc": (SHARED / "acdc_3dcardiac_subset" / "dataset.json", "benchmarks.baseline_acdc_unet"),
    "cvc": (SHARED / "cvc_clinicdb" / "dataset.json", "benchmarks.baseline_cvc_unet"),
    "isbi": (ROOT / "benchmarks" / "datasets" / "isbi2012" / "dataset.json", "benchmarks.baseline_em_basicunet"),
    "brats": (BRATS / "dataset.json", "benchmarks.baseline_mri_spleen_unet"),
    #: the four BRATS labels as classes (necrosis, oedema, non-enhancing, enhancing): no stock recipe, --skip-stock
    "brats_labels": (ROOT / "benchmarks" / "datasets" / "brats2013" / "dataset.json", None),
}


def brats_dataset(folder: Path = BRATS) -> Path:
    """BRATS as a whole-tumour task (the MRI bundle's and the stock recipe's): ``folder/dataset.json`` with links to
    the three subject folders of ``../shared/data/brats2013_deepmedic_subset`` (paths relative to ``folder``, as
    the BRATS copy is laid out) and label values 1-4 merged into one class by the planner."""
    source = json.loads((ROOT / "benchmarks" / "datasets" / "brats2013" / "dataset.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    training = []
    for item in source["training"]:
        subject = (ROOT / "benchmarks" / "datasets" / "brats2013" / item["label"]).resolve().parent
        link = folder / subject.name
        if not link.exists():
            link.symlink_to(subject, target_is_directory=True)
        training.append(
            {
                "image": [f"{subject.name}/{Path(path).name}" for path in item["image"]],
                "label": f"{subject.name}/{Path(item['label']).name}",
            }
        )
    data = {
        **{k: source[k] for k in ("description", "reference", "licence", "tensorImageSize", "modality")},
        "name": "BRATS 2013 whole tumour (3 subjects, DeepMedic copy)",
        "labels": {"background": 0, "whole tumour": [1, 2, 3, 4]},
        "terminology": {"whole tumour": BRATS_TUMOUR_CODES},
        "training": training,
    }
    path = folder / "dataset.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def _run(command: list[str], log: Path) -> float:
    """Run ``command`` with its output appended to ``log``; returns its wall-clock seconds."""
    start = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed (exit {result.returncode}); see {log}")
    return time.monotonic() - start


def _absolute_split(bundle: Path) -> dict:
    """The bundle's split with absolute paths (the shared split format of the baselines)."""
    train = json.loads((bundle / "configs" / "train.json").read_text())
    root = Path(train["dataset_dir"])
    split = json.loads((bundle / "configs" / "split.json").read_text())

    def absolute(value):
        return [absolute(v) for v in value] if isinstance(value, list) else str((root / value).resolve())

    return {side: [{k: absolute(v) for k, v in item.items()} for item in items] for side, items in split.items()}


def _isbi_scores(pred_dir: Path, split: dict) -> dict[str, float]:
    """ISBI 2012 measures of our validation slices, by the stock baseline's code (``monai_unet.metrics``): pixel
    error and Rand error at 0.5 and at the best threshold, from the membrane probabilities ``<case>_prob.tif``
    (checked against the label maps ``<case>_seg.png`` so a transposed or shifted file cannot pass)."""
    from monai_unet.io import read_image_file
    from monai_unet.io.naming import case_name
    from monai_unet.metrics import best_threshold_errors, pixel_error, rand_error

    rows = []
    for item in split["validation"]:
        case = case_name(item["image"])
        probability = np.squeeze(read_image_file(pred_dir / f"{case}_prob.tif").array).astype(np.float64)
        labels = read_image_file(pred_dir / f"{case}_seg.png").array
        agreement = float(np.mean((probability >= 0.5) == (labels == 1)))
        if agreement < 0.95:  # a largest-component step drops the small fragments (1.2 % of ISBI pixels seen)
            raise SystemExit(f"{pred_dir / case}: probabilities and label map agree on only {agreement:.3%} of pixels")
        truth = read_image_file(item["label"]).array == 0  # ISBI labels: membrane = 0
        best = best_threshold_errors(probability, truth)
        rows.append(
            {
                "pixel_error": pixel_error(probability, truth),
                "rand_error": rand_error(probability, truth),
                "best_rand_error": best["rand_error"],
                "best_rand_threshold": best["rand_threshold"],
            }
        )
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


#: BraTS's evaluated regions, each the union of BRATS 2013 label values in the truth and in a four-label prediction
BRATS_REGIONS = {
    index: {"name": name, "values": values, "predicted": values}
    for index, (name, values) in enumerate(
        (("whole tumour", [1, 2, 3, 4]), ("tumour core", [1, 3, 4]), ("enhancing tumour", [4])), start=1
    )
}


def brats_region_scores(pred_dir: Path, split: dict) -> dict[str, float]:
    """Mean Dice over the validation cases of BraTS's three regions, from label maps ``<case>_seg.*`` predicting
    the four BRATS labels (task ``brats_labels``), by :func:`benchmarks.scoring.score_split`."""
    mean = score_split(pred_dir, split, BRATS_REGIONS)["mean"]
    return {region["name"]: mean[f"dice_{region['name']}"] for region in BRATS_REGIONS.values()}


def _run_folder(out: Path) -> Path:
    """Our training run's folder: ``DIR/ours/run`` (``bundle/runs`` in results written before run folders)."""
    return out / "ours" / "run" if (out / "ours" / "run").is_dir() else out / "bundle" / "runs"


def _curve_ours(run: Path, keep_largest: list[int]) -> list[dict]:
    """Our run's validations: the network's mean foreground Dice (``val_mean_dice``) and, where the run recorded
    the largest-component Dice per class, the mean as the bundle segments (``val_mean_dice_postprocessed``: the
    largest component kept for the classes in ``keep_largest``, the post-processing the run chose at its end)."""
    rows = []
    for row in history_rows(run / "validation_history.csv"):
        curve_row = {"seconds": row["elapsed_s"], "val_mean_dice": row["val_mean_dice"]}
        classes = [int(key.removeprefix("val_dice_")) for key in row if key.removeprefix("val_dice_").isdigit()]
        if classes and all(f"val_dice_lcc_{c}" in row for c in classes):
            chosen = [row[f"val_dice_lcc_{c}" if c in keep_largest else f"val_dice_{c}"] for c in classes]
            curve_row["val_mean_dice_postprocessed"] = float(np.mean(chosen))
        rows.append(curve_row)
    return rows


def _curve_stock(stock: Path) -> list[dict]:
    """The stock run's validations: ``val_mean_dice`` (multi-class baselines), ``val_dice`` (one class), ``dice``
    (the EM baseline's rows, which carry all its validation measures) or ``dice_2mm`` (the MRI baseline validates on
    its 2 mm grid, not the subject's own)."""
    history = json.loads((stock / "history.json").read_text())
    rows = []
    for r in history:
        value = next((r[k] for k in ("val_mean_dice", "val_dice", "dice", "dice_2mm") if r.get(k) is not None), None)
        if value is not None:
            rows.append({"seconds": float(r["seconds"]), "val_mean_dice": float(value)})
    return rows


def _stored_stock(path: Path, task: str, fold: int) -> dict:
    """The stock side of a stored ``comparison.json``: its scores, validation curve and minutes."""
    stored = json.loads(path.read_text())
    if (stored.get("task"), stored.get("fold")) != (task, fold):
        raise SystemExit(
            f"{path}: its stock run is task {stored.get('task')!r} fold {stored.get('fold')!r}, "
            f"not {task!r} fold {fold}: a pairing needs the same split"
        )
    if "stock" not in stored:
        raise SystemExit(f"{path}: holds no stock side (was it written with --skip-stock?)")
    return {
        "stock": stored["stock"],
        "stock_curve": stored.get("stock_curve") or [],
        "stock_minutes": stored.get("stock_minutes", stored["minutes"]),
        "stock_from": path.name,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--fold", type=int, default=None, help="fold held out (default: 4 for isbi, else 0)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both sides (default 0)")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--skip-stock", action="store_true", help="only the planned bundle")
    parser.add_argument("--skip-ours", action="store_true", help="only the stock recipe (on an existing plan)")
    parser.add_argument(
        "--stock-from",
        type=Path,
        default=None,
        help="a stored comparison.json (same task and fold) whose stock side is paired with ours; no stock run",
    )
    parser.add_argument(
        "--reuse-plan",
        action="store_true",
        help="train the bundle already in DIR/bundle (e.g. edited, or another seed's) instead of planning; --seed "
        "still sets its training seed (override seed=S; plans.json keeps the planned one)",
    )
    parser.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for our training, e.g. precision=fp32 (repeatable)",
    )
    args = parser.parse_args(argv)
    dataset, baseline = TASKS[args.task]
    if baseline is None and not args.skip_stock:
        parser.error(f"{args.task} has no stock recipe: pass --skip-stock")
    if args.task == "brats":
        dataset = brats_dataset()
    fold = args.fold if args.fold is not None else (4 if args.task == "isbi" else 0)
    out = (args.output_dir or ROOT / "outputs" / "planned_vs_stock" / f"{args.task}_fold{fold}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    cli = [sys.executable, "-m", "monai_unet.cli.main"]
    bundle = out / "bundle"
    seconds: dict[str, float] = {}
    if not args.skip_ours and not args.reuse_plan:
        seconds["plan"] = _run(
            [
                *cli,
                "plan",
                str(dataset),
                "-o",
                str(bundle),
                "--budget-min",
                str(args.minutes),
                "--fold",
                str(fold),
                "--seed",
                str(args.seed),
                "--force",
                "--no-progress",
            ],
            log,
        )
    if not args.skip_ours:
        seconds["train"] = _run(
            [
                *cli,
                "train",
                "--bundle",
                str(bundle),
                "--output-dir",
                str(out / "ours" / "run"),
                "--promote",
                *([f"seed={args.seed}"] if args.reuse_plan else []),
                *args.train_override,
            ],
            log,
        )
    split = _absolute_split(bundle)
    (out / "split.json").write_text(json.dumps(split, indent=1))
    plans = json.loads((bundle / "configs" / "plans.json").read_text())["plan"]
    classes = {
        index: {"name": name, "values": value if isinstance(value, list) else [value]}
        for index, (name, value) in enumerate(zip(plans["label_names"], plans["label_values"], strict=True))
    }
    if not args.skip_ours:
        test_list = out / "validation_as_test.json"
        test_list.write_text(json.dumps({"test": [{"image": item["image"]} for item in split["validation"]]}))
        seconds["infer"] = _run(
            [
                *cli,
                "infer",
                "--bundle",
                str(bundle),
                "--dataset-dir",
                str(test_list),
                "--output-dir",
                str(out / "ours" / "predictions"),
                *(["save_probabilities=true"] if args.task == "isbi" else []),
            ],
            log,
        )
        ours = score_split(out / "ours" / "predictions", load_split(out / "split.json"), classes)
        if args.task == "isbi":
            ours["isbi"] = _isbi_scores(out / "ours" / "predictions", load_split(out / "split.json"))
        if args.task == "brats_labels":
            ours["regions"] = brats_region_scores(out / "ours" / "predictions", load_split(out / "split.json"))
        (out / "ours" / "metrics.json").write_text(
            json.dumps(finite_json({"scores": ours, "seconds": seconds}), indent=2)
        )
    stored_stock = _stored_stock(args.stock_from, args.task, fold) if args.stock_from else None
    if not args.skip_stock and stored_stock is None:
        seconds["stock"] = _run(
            [
                sys.executable,
                "-m",
                baseline,
                "--split",
                str(out / "split.json"),
                "--minutes",
                str(args.minutes),
                "--output-dir",
                str(out / "stock"),
                "--seed",
                str(args.seed),
            ],
            log,
        )
    comparison = {
        "task": args.task,
        "fold": fold,
        "seed": args.seed,
        "minutes": plans["budget"]["minutes"] if stored_stock else args.minutes,
        "classes": classes,
        "seconds": seconds,
    }
    for side in ("ours", "stock"):
        path = out / side / "metrics.json"
        if path.is_file():
            recorded = json.loads(path.read_text())
            scores = recorded["scores"]
            if side == "ours":  # a re-assembly (--skip-ours) keeps the plan, training and inference seconds
                comparison["seconds"] = {**recorded.get("seconds", {}), **comparison["seconds"]}
            comparison[side] = {"mean_dice": scores["mean_dice"], "mean": scores["mean"], "n_cases": scores["n_cases"]}
            comparison[side].update({key: scores[key] for key in ("isbi", "regions") if key in scores})
    if args.task == "isbi" and (out / "stock" / "summary.json").is_file():
        stock_summary = json.loads((out / "stock" / "summary.json").read_text())["baseline_basicunet"]
        comparison.setdefault("stock", {})["isbi"] = {
            key: stock_summary["scores"][key] if "scores" in stock_summary else stock_summary[key]
            for key in ("pixel_error", "rand_error", "best_rand_error", "best_rand_threshold")
        }
    if (_run_folder(out) / "validation_history.csv").is_file():
        recorded_plan = json.loads((bundle / "configs" / "plans.json").read_text())
        keep_largest = recorded_plan.get("postprocessing", {}).get("keep_largest_labels", [])
        comparison["ours_curve"] = _curve_ours(_run_folder(out), keep_largest)
        comparison["ours_training"] = recorded_plan["training"]
    if stored_stock is not None:
        comparison.update(stored_stock)  # replaces any stock side found in DIR
    elif (out / "stock" / "history.json").is_file():
        comparison["stock_curve"] = _curve_stock(out / "stock")
    if comparison.get("ours_curve") and comparison.get("stock_curve"):
        comparison["time_to_accuracy"] = summarise(comparison)
    (out / "comparison.json").write_text(json.dumps(finite_json(comparison), indent=2))
    print(json.dumps({k: v for k, v in comparison.items() if not k.endswith("_curve")}, indent=1))
    return comparison


if __name__ == "__main__":
    main()
