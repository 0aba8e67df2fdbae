"""The stock-MONAI baseline for CVC-ClinicDB polyps: the MONAI 2D segmentation tutorial's ``UNet`` on whole frames.

``python -m benchmarks.baseline_cvc_unet [--split SPLIT.json] [--minutes 20] [--output-dir DIR] [--seed 0]
[--device cuda] [--workers N] [--write-split FILE] [--split-seed 0]``

Data: ``../shared/data/cvc_clinicdb`` (2D RGB JPEG frames, 256 × 256; labels PNG, 1 = polyp). Without ``--split``
the split comes from that ``dataset.json``'s ``training`` list (frames 1–478, sequences 1–23; the ``test`` list of
sequences 24–29 is left alone): the frames in name order are cut into blocks of 24 consecutive frames (about one
video sequence: the database has 612 frames in 29 sequences) and a seeded 20 % of the blocks (``--split-seed``) is
the validation set, so that neighbouring, nearly identical frames mostly stay on one side. Pass ``--split`` to use
another split (e.g. the sequence split of ``monai-unet plan``).

The budget is wall clock from the start of data loading (``CacheDataset`` fill inside it) to the end of training;
validation (polyp Dice over the validation frames) runs every epoch but at most every ``--minutes``/8, and the best
validated epoch is kept. Then every validation frame is predicted and written as ``DIR/predictions/<case>_seg.png``
(uint8, 0/1, the frame's size and orientation), scored by ``benchmarks.scoring`` (Dice, HD95 in pixels) into
``DIR/metrics.json``; ``DIR/history.json`` has one row per epoch (``seconds``, ``loss``, ``val_dice``).

Recipe, and why: MONAI's 2D segmentation tutorial (``2d_segmentation/torch/unet_training_dict.py``) is the stock
starting point for 2D images; its ``UNet`` (strided residual units) is about 3× cheaper per step than ``BasicUNet``
on these frames on a CPU (4 s against 13 s for 8 × 3 × 256², forward and backward, 2 threads, measured here under
load), which matters in a fixed budget.
Adapted to this data: 3 input channels (RGB), 2 output classes with Dice + cross-entropy (as in our other
baselines; the tutorial has one sigmoid channel and Dice), whole frames instead of 96² crops (the frames are small and
a polyp can fill half of one).

- ``UNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
  num_res_units=2)``;
- ``LoadImaged`` (PIL, MONAI's default reader for JPEG/PNG) → ``EnsureChannelFirstd`` → ``ScaleIntensityd`` (image
  to [0, 1]), cached; training: ``RandFlipd`` on both axes, ``RandRotate90d``; 8 frames per batch;
- ``DiceCELoss(to_onehot_y=True, softmax=True)``, ``Adam`` at 1e-3 (the tutorial's);
- inference: ``sliding_window_inference`` with a 256² window (the whole frame), argmax.

MONAI's readers index 2D arrays (x, y), i.e. transposed relative to PIL's rows; the predictions are written through
SimpleITK from the same (x, y) order, and the script checks at start that a label as MONAI loads it equals the file as
the scoring reads it.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandFlipd, RandRotate90d, ScaleIntensityd

from benchmarks.baseline_training import (
    ROOT,
    SHARED_DATA,
    add_arguments,
    block_split,
    brief,
    check_orientation,
    finish_run,
    prediction_path,
    prepare_run,
    sliding_window_labels,
    split_from_dataset_json,
    train_within_budget,
    write_label_map,
)

DATA = SHARED_DATA / "cvc_clinicdb"
KEYS = ["image", "label"]
CLASSES = {1: "polyp"}
ROI = (256, 256)
BATCH = 8
LR = 1e-3


def default_split(seed: int = 0) -> dict:
    """A seeded 20 % of ``dataset.json``'s ``training`` frames, in blocks of 24 consecutive frames, as validation."""
    if not (DATA / "dataset.json").is_file():
        raise SystemExit(f"{DATA}: the CVC-ClinicDB data is not here (it comes from ../shared); pass --split")
    items = split_from_dataset_json(DATA / "dataset.json", validation=[])["training"]
    return block_split(items, fraction=0.2, block=24, seed=seed)


def preprocessing() -> Compose:
    return Compose([LoadImaged(KEYS), EnsureChannelFirstd(KEYS), ScaleIntensityd("image")])


def augmentation() -> list:
    return [
        RandFlipd(KEYS, prob=0.5, spatial_axis=0),
        RandFlipd(KEYS, prob=0.5, spatial_axis=1),
        RandRotate90d(KEYS, prob=0.5, max_k=3),
    ]


def network() -> UNet:
    return UNet(2, 3, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)


def recipe() -> dict:
    return {
        "name": "MONAI 2D segmentation tutorial UNet, whole frames",
        "network": "UNet(2, 3, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)",
        "preprocessing": "LoadImaged (PIL), EnsureChannelFirstd, ScaleIntensityd; CacheDataset",
        "augmentation": "RandFlipd x/y, RandRotate90d",
        "batch": f"{BATCH} frames",
        "loss": "DiceCELoss(to_onehot_y, softmax)",
        "optimizer": f"Adam lr {LR}",
        "inference": f"sliding_window_inference roi {ROI}; argmax",
        "validation_metric": "polyp Dice, mean over validation frames",
    }


def dice(labels: torch.Tensor, truth: torch.Tensor) -> float:
    """Polyp Dice of two (1, x, y) label maps; 1 when both are empty."""
    pred, true = labels.numpy() > 0, truth.numpy() > 0
    total = pred.sum() + true.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(pred, true).sum() / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, 20.0, ROOT / "outputs" / "baselines" / "cvc_unet")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the default split (default %(default)s)")
    args = parser.parse_args()
    split = prepare_run(args, lambda: default_split(args.split_seed))
    start = time.monotonic()
    pre = preprocessing()
    train_ds = CacheDataset(split["training"], Compose([*pre.transforms, *augmentation()]), num_workers=args.workers)
    validation = CacheDataset(split["validation"], pre, num_workers=args.workers)
    setup_s = time.monotonic() - start
    check_orientation(validation[0]["label"][0].numpy(), split["validation"][0]["label"])
    loader = DataLoader(
        train_ds,
        batch_size=BATCH,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=args.device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    net = network().to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)

    def predict(image: torch.Tensor) -> torch.Tensor:
        return sliding_window_inference(image, ROI, 1, net)

    def validate() -> dict[str, float]:
        scores = [dice(sliding_window_labels(predict, d["image"], args.device), d["label"]) for d in validation]
        return {"val_dice": float(np.mean(scores))}

    trained = train_within_budget(
        net,
        loader,
        loss_function,
        optimizer,
        max(0.0, args.minutes - setup_s / 60),
        validate,
        1,
        "val_dice",
        args.output_dir / "best_cvc_unet.pt",
        device=args.device,
        min_interval_s=60 * args.minutes / 8,
    )
    for item, data in zip(split["validation"], validation, strict=True):
        labels = sliding_window_labels(predict, data["image"], args.device)
        write_label_map(labels[0].numpy(), item["image"], prediction_path(args.output_dir, item, ".png"))
    metrics = finish_run(
        args, split, trained, net, CLASSES, recipe(), task="CVC-ClinicDB", setup_seconds=round(setup_s, 1)
    )
    print(json.dumps(brief(metrics), indent=2))


if __name__ == "__main__":
    main()
