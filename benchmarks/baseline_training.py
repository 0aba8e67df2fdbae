"""What the stock-MONAI baseline scripts share: the budgeted training loop, splits, predictions and the JSON outputs.

- :func:`train_within_budget`: wall-clock budget, periodic validation inside it, best epoch kept.
- Splits: ``{"training": [{"image": path or [paths], "label": path}, ...], "validation": [...]}`` with absolute
  paths (:func:`benchmarks.scoring.load_split` reads one); a case is named ``case_name(item["image"])``.
  :func:`split_from_dataset_json` and :func:`block_split` build the default splits.
- :func:`add_arguments` / :func:`prepare_run`: the common CLI (``--split``, ``--minutes``, ``--output-dir``,
  ``--seed``, ``--device``, ``--workers``, ``--threads``, ``--write-split``).
- :func:`invert_to_input_grid` and :func:`write_label_map`: a label map back on the input file's own grid, written as
  ``DIR/predictions/<case>_seg.<ext>`` (uint8 class indices).
- :func:`finish_run`: scores the predictions with :mod:`benchmarks.scoring` and writes ``DIR/metrics.json`` and
  ``DIR/history.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import monai
import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd
from monai.utils import set_determinism

from benchmarks.scoring import PREDICTION_POSTFIX, finite_json, load_split, score_split
from monai_unet.io.naming import case_name

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def train_within_budget(
    net: torch.nn.Module,
    loader: Iterable[dict],
    loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    minutes: float,
    validate: Callable[[], dict[str, float]],
    every: int,
    key: str,
    best_path: Path,
    *,
    device: torch.device | str | None = None,
    min_interval_s: float = 0.0,
) -> dict:
    """Train ``net`` on ``loader`` (``image``/``label`` batches) until ``minutes`` of wall clock have passed.

    Every ``every`` epochs, but no sooner than ``min_interval_s`` seconds after the previous validation,
    ``validate()`` runs with the network in eval mode (inside the budget); the epoch with the highest ``key`` is saved
    to ``best_path`` and reloaded at the end (a budget too short for one validation keeps the last epoch). Each
    epoch's row (``epoch``, ``seconds`` since the start, mean ``loss``, and for validated epochs the validation
    metrics and ``validation_s``) is printed as JSON. ``device``: where batches are moved (None: left where they are).

    Returns:
        ``{"epochs", "best_epoch", "history"}``; ``net`` is left in eval mode.
    """
    start, epoch, best, history = time.monotonic(), 0, None, []
    last_validation = start
    while time.monotonic() - start < 60 * minutes:
        epoch += 1
        net.train()
        losses = []
        for batch in loader:
            if time.monotonic() - start >= 60 * minutes:
                break
            image, label = batch["image"], batch["label"]
            if device is not None:
                image, label = image.to(device, non_blocking=True), label.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = loss_function(net(image), label)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        now = time.monotonic()
        row = {"epoch": epoch, "seconds": round(now - start, 1), "loss": float(np.mean(losses)) if losses else None}
        if epoch % every == 0 and now - last_validation >= min_interval_s:
            net.eval()
            with torch.no_grad():
                row.update(validate())
            last_validation = time.monotonic()
            row["validation_s"] = round(last_validation - now, 1)
            if best is None or row[key] > best[key]:
                best = dict(row)
                torch.save(net.state_dict(), best_path)
        history.append(row)
        print(json.dumps(row), flush=True)
    if best is not None:
        net.load_state_dict(torch.load(best_path, weights_only=True))
    net.eval()
    return {"epochs": epoch, "best_epoch": best["epoch"] if best else None, "history": history}


# ----------------------------------------------------------------------------------------------- splits


def split_from_dataset_json(path: str | os.PathLike, validation: Sequence[str] | None = None) -> dict:
    """An MSD-style ``dataset.json`` → a split with absolute paths: the items of its ``validation`` list (or the
    cases named in ``validation``) as validation, the other ``training`` items as training."""
    path = Path(path)
    dataset = json.loads(path.read_text())

    def absolute(item: dict) -> dict:
        def one(p):
            return [one(q) for q in p] if isinstance(p, list) else str((path.parent / p).resolve())

        return {"image": one(item["image"]), "label": one(item["label"])}

    training = [absolute(item) for item in dataset["training"]]
    if validation is None:
        names = {case_name(absolute(item)["image"]) for item in dataset.get("validation", [])}
        if not names:
            raise ValueError(f"{path}: no 'validation' list; name the validation cases")
    else:
        names = set(validation)
    split = {
        "training": [item for item in training if case_name(item["image"]) not in names],
        "validation": [item for item in training if case_name(item["image"]) in names],
    }
    if len(split["validation"]) != len(names):
        raise ValueError(f"{path}: validation cases not in 'training': {sorted(names)}")
    return split


def block_split(items: Sequence[dict], fraction: float = 0.2, block: int = 24, seed: int = 0) -> dict:
    """Contiguous blocks of ``block`` items (in case-name order), a seeded ``fraction`` of the blocks as validation.

    For video frames (CVC-ClinicDB) blocks keep most neighbouring, nearly identical frames on one side.
    """
    ordered = sorted(items, key=lambda item: case_name(item["image"]))
    blocks = [ordered[i : i + block] for i in range(0, len(ordered), block)]
    chosen = set(np.random.default_rng(seed).choice(len(blocks), max(1, round(fraction * len(blocks))), False))
    return {
        "training": [item for i, b in enumerate(blocks) if i not in chosen for item in b],
        "validation": [item for i, b in enumerate(blocks) if i in chosen for item in b],
    }


# ----------------------------------------------------------------------------------------------- the CLI


def add_arguments(parser: argparse.ArgumentParser, minutes: float, output_dir: Path) -> argparse.ArgumentParser:
    """The options every baseline script takes."""
    parser.add_argument("--split", type=Path, default=None, help="split JSON (default: the script's own split)")
    parser.add_argument("--minutes", type=float, default=minutes, help="training budget, validation included")
    parser.add_argument("--output-dir", type=Path, default=output_dir)
    parser.add_argument("--seed", type=int, default=0, help="seed of the training (default %(default)s)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--workers", type=int, default=None, help="data loader workers (default: 0 on ≤ 4 cores)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on a CPU device (default %(default)s)")
    parser.add_argument("--write-split", type=Path, default=None, help="write the split used to this file and stop")
    return parser


def prepare_run(args: argparse.Namespace, default_split: Callable[[], dict]) -> dict:
    """Load ``--split`` (or build the default one), write it to ``DIR/split.json`` (or ``--write-split`` and exit),
    seed everything, pick the device and the number of workers (set on ``args``). Returns the split."""
    split = load_split(args.split) if args.split else default_split()
    if args.write_split:
        args.write_split.parent.mkdir(parents=True, exist_ok=True)
        args.write_split.write_text(json.dumps(split, indent=1))
        print(f"{args.write_split}: {len(split['training'])} training, {len(split['validation'])} validation")
        raise SystemExit(0)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "split.json").write_text(json.dumps(split, indent=1))
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.device.type == "cpu":
        torch.set_num_threads(args.threads)  # default 2: the project's machines have 2 cores
    if args.workers is None:
        args.workers = 0 if (os.cpu_count() or 1) <= 4 else min(8, (os.cpu_count() or 1) - 2)
    set_determinism(seed=args.seed)
    return split


# ----------------------------------------------------------------------------------------------- predictions


def sliding_window_labels(predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, device) -> torch.Tensor:
    """Class indices (1, *spatial) on the CPU of one preprocessed (C, *spatial) image; ``predict`` maps a batch of
    one image to logits (e.g. a ``sliding_window_inference`` call)."""
    with torch.no_grad():
        logits = predict(image[None].to(device))
    return logits.argmax(1).cpu()


def invert_to_input_grid(labels: torch.Tensor, data: dict, preprocessing: Callable) -> np.ndarray:
    """A (1, *spatial) label map on the grid of the preprocessed ``data["image"]`` → the input file's own grid.

    ``Invertd`` undoes ``preprocessing``'s spatial transforms (``Orientationd``, ``Spacingd``, ``CropForegroundd``,
    ...) with nearest-neighbour interpolation; the result is indexed like the array the reader returned (x, y[, z]).
    """
    image = data["image"]
    pred = MetaTensor(labels.float().cpu(), meta=dict(image.meta), applied_operations=list(image.applied_operations))
    inverted = Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=True)({**data, "pred": pred})
    return np.rint(np.asarray(inverted["pred"][0])).astype(np.uint8)


def _first(path: str | Sequence[str]) -> str:
    return str(path if isinstance(path, str | os.PathLike) else path[0])


def prediction_path(output_dir: Path, item: Mapping, ext: str) -> Path:
    """``output_dir/predictions/<case>_seg<ext>``."""
    return Path(output_dir) / "predictions" / f"{case_name(item['image'])}{PREDICTION_POSTFIX}{ext}"


def write_label_map(labels: np.ndarray, reference: str | Sequence[str], path: Path) -> Path:
    """Write uint8 class indices (x, y[, z]) with the grid of ``reference`` (the input image file; the first one of
    a multi-file input) through SimpleITK, which indexes a file's voxels as MONAI's readers return them."""
    info = sitk.ImageFileReader()
    info.SetFileName(_first(reference))
    info.ReadImageInformation()
    size = tuple(info.GetSize())[: info.GetDimension()]
    if labels.shape != size:
        raise ValueError(f"{path}: label map {labels.shape} is not on the grid of {_first(reference)} {size}")
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(labels, dtype=np.uint8).T))
    image.SetOrigin(info.GetOrigin())
    image.SetSpacing(info.GetSpacing())
    image.SetDirection(info.GetDirection())
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def check_orientation(loaded: np.ndarray, label_path: str, values: Sequence[float] | None = None) -> None:
    """Raise unless a label as MONAI's ``LoadImaged`` returned it (x, y[, z]) equals the file as the scoring reads it
    (``monai_unet.io.read_image_file``; with ``values``: the mask of those values in the file): then predictions
    indexed like ``loaded`` are written the right way round."""
    from monai_unet.io import read_image_file

    truth = read_image_file(label_path).array
    if values is not None:
        truth = np.isin(truth, values)
    if loaded.shape != truth.shape or not np.array_equal(np.asarray(loaded), truth):
        raise RuntimeError(f"{label_path}: MONAI's array and the scoring reader's differ (orientation)")


# ----------------------------------------------------------------------------------------------- outputs


def finish_run(
    args: argparse.Namespace,
    split: Mapping,
    trained: Mapping,
    net: torch.nn.Module,
    classes: Mapping,
    recipe: Mapping,
    truth_values: Mapping | None = None,
    **extra,
) -> dict:
    """Score ``DIR/predictions`` against the validation labels and write ``DIR/metrics.json`` (scores, epochs,
    budget, recipe) and ``DIR/history.json`` (one row per epoch: ``seconds``, ``loss``, validation metrics)."""
    scores = score_split(args.output_dir / "predictions", split, classes, truth_values=truth_values)
    metrics = {
        "budget_minutes": args.minutes,
        "epochs": trained["epochs"],
        "best_epoch": trained["best_epoch"],
        "seed": args.seed,
        "device": str(args.device),
        "split": str(args.split.resolve()) if args.split else "default",
        "n_training": len(split["training"]),
        "n_validation": len(split["validation"]),
        "parameters": sum(p.numel() for p in net.parameters()),
        "recipe": dict(recipe),
        **extra,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "monai": monai.__version__,
            "gpu": torch.cuda.get_device_name() if args.device.type == "cuda" else None,
        },
        "scores": scores,
    }
    metrics = finite_json(metrics)
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.output_dir / "history.json").write_text(json.dumps(finite_json(list(trained["history"])), indent=1))
    return metrics


def brief(metrics: Mapping) -> dict:
    """``metrics`` without the per-case rows, for printing."""
    return {**metrics, "scores": {k: v for k, v in metrics["scores"].items() if k != "per_case"}}
