"""The stock-MONAI baseline for the EM bundle: ``BasicUNet`` (2D) with stock transforms, same data, same budget.

``python -m benchmarks.baseline_em_basicunet [--minutes 18] [--output-dir outputs/baselines/em_basicunet]
[--split SPLIT.json] [--seed 0] [--device cuda] [--write-split FILE]``

Needs ``../shared/data/isbi2012_em_membranes``. Trains on slices 00–19 and validates on 20–24, the split of
``bundles/em_membrane_segmentation``, for the same wall-clock budget (validation every 5 epochs included, best
epoch by membrane Dice kept), then scores the best baseline epoch and the EM bundle's shipped ``models/model.pt``
(through the bundle's own inference config) with the same code on the same 5 slices. With ``--split`` (items
``{"image": png, "label": png}``, ISBI labels: 0 = membrane, 255 = cell) it trains and validates on that split
instead, and the bundle is not scored (its weights were trained on slices 00–19, which another split may validate
on). The recipe is the MONAI 2D segmentation tutorial's, with this task's label mapping:

- ``BasicUNet(spatial_dims=2, in_channels=1, out_channels=2)`` (default features 32, 32, 64, 128, 256, 32);
- ``LoadImaged`` → ``EnsureChannelFirstd`` → ``ScaleIntensityd``, membrane (value 0) as class 1;
  ``RandSpatialCropSamplesd`` 4 × 256² per slice (the pixels of one 508² tile of ours), ``RandRotate90d``,
  ``RandFlipd`` on both axes;
- ``DiceCELoss(to_onehot_y=True, softmax=True)``, Adam at 5e-4 (our learning rate), batch 4 crops of one slice;
- inference: ``sliding_window_inference`` with 256² windows, overlap 0.25.

Writes ``summary.json`` and ``history.csv`` in the output folder; the figures go into ``benchmarks/RESULTS.md`` and
the bundle's docs by hand. Also, like every baseline script: the validation slices' predictions
``predictions/<case>_seg.png`` (uint8, 1 = membrane, at threshold 0.5), their scores by ``benchmarks.scoring``
(membrane = ground-truth value 0; Dice, HD95 in pixels) in ``metrics.json``, and ``history.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_hausdorff_distance
from monai.networks.nets import BasicUNet
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    Lambdad,
    LoadImaged,
    RandFlipd,
    RandRotate90d,
    RandSpatialCropSamplesd,
    ScaleIntensityd,
)
from monai.utils import set_determinism

from benchmarks.baseline_training import (
    add_arguments,
    brief,
    check_orientation,
    finish_run,
    prediction_path,
    prepare_run,
    train_within_budget,
    write_label_map,
)
from monai_unet.metrics import best_threshold_errors, pixel_error, rand_error

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "em_membrane_segmentation"
DATA = ROOT.parent / "shared" / "data" / "isbi2012_em_membranes"
TRAIN_IDS = [f"{i:02d}" for i in range(20)]
VAL_IDS = [f"{i:02d}" for i in range(20, 25)]
ROI = (256, 256)
CLASSES, TRUTH_VALUES = {1: "membrane"}, {1: [0]}


def _items(ids: list[str]) -> list[dict[str, str]]:
    return [{"image": str(DATA / "images" / f"{i}.png"), "label": str(DATA / "labels" / f"{i}.png")} for i in ids]


def _loading() -> list:
    return [
        LoadImaged(["image", "label"], image_only=True),
        EnsureChannelFirstd(["image", "label"], channel_dim="no_channel"),
        ScaleIntensityd("image"),
        Lambdad("label", lambda x: (x == 0).float()),  # membrane (0 in the ISBI labels) is class 1
    ]


def _membrane_probability(logits: torch.Tensor) -> np.ndarray:
    """(1, 2, H, W) logits → (H, W) membrane probability."""
    return torch.softmax(logits.float(), dim=1)[0, 1].cpu().numpy()


def _scores(probability: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Membrane Dice, IoU, HD95 (pixels), pixel error and Rand error at 0.5, and the best-threshold errors."""
    predicted, truth_b = probability >= 0.5, truth > 0
    overlap = np.logical_and(predicted, truth_b).sum()
    dice = 2 * overlap / (predicted.sum() + truth_b.sum())
    iou = overlap / np.logical_or(predicted, truth_b).sum()
    hd95 = compute_hausdorff_distance(
        torch.as_tensor(predicted)[None, None], torch.as_tensor(truth_b)[None, None], percentile=95
    ).item()
    best = best_threshold_errors(probability, truth_b)
    return {
        "dice": float(dice),
        "iou": float(iou),
        "hd95_px": float(hd95),
        "pixel_error": pixel_error(probability, truth_b),
        "rand_error": rand_error(probability, truth_b),
        "best_rand_error": best["rand_error"],
        "best_rand_threshold": best["rand_threshold"],
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def _default_split() -> dict:
    return {"training": _items(TRAIN_IDS), "validation": _items(VAL_IDS)}


def _validation_cases(items: list[dict]) -> list[dict]:
    return [Compose(_loading())(item) for item in items]


def _evaluate(predict, cases: list[dict], device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean scores over the validation slices; ``predict`` maps a (1, 1, H, W) image to (1, 2, H, W) logits."""
    rows = []
    with torch.no_grad():
        for case in cases:
            probability = _membrane_probability(predict(case["image"][None].to(device)))
            rows.append(_scores(probability, case["label"][0].numpy()))
    return _mean(rows)


def _write_predictions(predict: Callable, split: dict, cases: list[dict], output_dir: Path, device) -> None:
    """``predictions/<case>_seg.png``: 1 where the membrane probability is at least 0.5."""
    with torch.no_grad():
        for item, case in zip(split["validation"], cases, strict=True):
            membrane = _membrane_probability(predict(case["image"][None].to(device))) >= 0.5
            write_label_map(membrane.astype(np.uint8), item["image"], prediction_path(output_dir, item, ".png"))


def _train_baseline(
    minutes: float, output_dir: Path, cases: list[dict], training: list[dict] | None = None, seed: int = 0, device="cpu"
) -> dict:
    set_determinism(seed=seed)
    train = Compose(
        [
            *_loading(),
            RandSpatialCropSamplesd(["image", "label"], roi_size=ROI, num_samples=4, random_size=False),
            RandRotate90d(["image", "label"], prob=0.5),
            RandFlipd(["image", "label"], prob=0.5, spatial_axis=0),
            RandFlipd(["image", "label"], prob=0.5, spatial_axis=1),
        ]
    )
    training = _items(TRAIN_IDS) if training is None else training
    loader = DataLoader(Dataset(training, train), batch_size=1, shuffle=True, num_workers=0)
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)

    def predict(image: torch.Tensor) -> torch.Tensor:
        return sliding_window_inference(image, ROI, 4, net, overlap=0.25)

    trained = train_within_budget(
        net,
        loader,
        loss_function,
        optimizer,
        minutes,
        lambda: _evaluate(predict, cases, device),
        5,
        "dice",
        output_dir / "best_basicunet.pt",
        device=device,
    )
    return {
        **trained,
        "parameters": sum(p.numel() for p in net.parameters()),
        "scores": _evaluate(predict, cases, device),
        "net": net,
        "predict": predict,
    }


def _score_bundle(cases: list[dict]) -> dict:
    """The EM bundle's shipped weights through its own inference config (network and overlap-tile inferer)."""
    parser = ConfigParser()
    parser.read_config(BUNDLE / "configs" / "inference.json")
    parser.update({"bundle_root": str(BUNDLE), "device": torch.device("cpu"), "progress": False})
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(BUNDLE / "models" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    inferer = parser.get_parsed_content("inferer")
    scores = _evaluate(lambda image: inferer(image, net), cases)
    return {"parameters": sum(p.numel() for p in net.parameters()), "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, 18.0, ROOT / "outputs" / "baselines" / "em_basicunet")
    args = parser.parse_args()
    if args.split is None and not DATA.is_dir():
        raise SystemExit(f"{DATA}: the ISBI 2012 data is not here (it comes from ../shared)")
    split = prepare_run(args, _default_split)
    cases = _validation_cases(split["validation"])
    check_orientation(cases[0]["label"][0].numpy(), split["validation"][0]["label"], TRUTH_VALUES[1])
    baseline = _train_baseline(args.minutes, args.output_dir, cases, split["training"], args.seed, args.device)
    net, predict = baseline.pop("net"), baseline.pop("predict")
    _write_predictions(predict, split, cases, args.output_dir, args.device)
    recipe = {
        "name": "MONAI 2D segmentation tutorial, BasicUNet",
        "network": "BasicUNet(spatial_dims=2, in_channels=1, out_channels=2)",
        "preprocessing": "LoadImaged, EnsureChannelFirstd, ScaleIntensityd; membrane (0) as class 1",
        "augmentation": f"RandSpatialCropSamplesd 4 x {ROI}, RandRotate90d, RandFlipd x/y",
        "loss": "DiceCELoss(to_onehot_y, softmax)",
        "optimizer": "Adam lr 5e-4",
        "inference": f"sliding_window_inference roi {ROI}, overlap 0.25; membrane probability >= 0.5",
        "validation_metric": "membrane Dice every 5 epochs",
    }
    isbi = {"isbi_scores": baseline["scores"]}
    metrics = finish_run(args, split, baseline, net, CLASSES, recipe, TRUTH_VALUES, task="ISBI 2012 EM", **isbi)
    ours = _score_bundle(cases) if args.split is None else None
    summary = {"minutes": args.minutes, "baseline_basicunet": baseline, "em_bundle": ours}
    with open(args.output_dir / "history.csv", "w", newline="") as stream:
        keys = sorted({key for row in baseline["history"] for key in row}, key=lambda k: (k != "epoch", k))
        writer = csv.DictWriter(stream, fieldnames=keys)
        writer.writeheader()
        writer.writerows(baseline["history"])
    summary["baseline_basicunet"] = {k: v for k, v in baseline.items() if k != "history"}
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(json.dumps(brief(metrics), indent=2))


if __name__ == "__main__":
    main()
