"""The stock-MONAI baseline for ACDC cardiac cine MRI: the spleen bundle's ``UNet`` (3D) with in-plane strides.

``python -m benchmarks.baseline_acdc_unet [--split SPLIT.json] [--minutes 20] [--output-dir DIR] [--seed 0]
[--device cuda] [--workers N] [--write-split FILE]``

Data: ``../shared/data/acdc_3dcardiac_subset`` (1 channel, 0 background, 1 RV, 2 myocardium, 3 LV; 1.5 × 1.5 ×
10 mm, 6–17 slices). Without ``--split`` the split is that ``dataset.json``'s: its ``validation`` list (both frames of
6 patients, 12 volumes) as validation, the other 48 ``training`` volumes as training. The budget is wall clock from
the start of data loading (the ``CacheDataset`` fill is inside it) to the end of training, validation included;
validation (mean foreground Dice on the preprocessed grid) runs every epoch but at most every ``--minutes``/8, and the
best validated epoch is kept. Then every validation case is predicted, inverted onto its own grid (``Invertd``) and
written as ``DIR/predictions/<case>_seg.nii.gz`` (uint8 class indices), scored by ``benchmarks.scoring`` (Dice, HD95
in mm per class) into ``DIR/metrics.json``; ``DIR/history.json`` has one row per epoch (``seconds``, ``loss``,
``val_mean_dice``, per-class Dice).

Recipe, and why. A MONAI user with a 3D MRI segmentation task starts from the model zoo's spleen bundle (the
reference 3D recipe, also our MRI baseline) and adapts it to the data; the MONAI tutorials have no ACDC recipe. The
adaptation this data forces is the slice spacing: 10 mm slices, 6–17 of them, so the patch holds 8 slices and the
network halves z only once (the spleen bundle's isotropic ``strides=2`` would reduce 8 slices to 1 by the second
level). A 2D network over slices would be the other stock choice; the 3D one keeps the through-plane context that
separates basal from apical slices, and matches the MRI baseline.

- ``UNet(spatial_dims=3, in_channels=1, out_channels=4, channels=(16, 32, 64, 128, 256), strides=((2, 2, 1),
  (2, 2, 1), (2, 2, 2), (2, 2, 1)), num_res_units=2, norm="batch")`` (the spleen bundle's, strides anisotropic);
- ``LoadImaged`` → ``EnsureChannelFirstd`` → ``Orientationd("RAS")`` → ``Spacingd`` 1.5 × 1.5 × 10 mm (the data's,
  so a no-op here; kept because real ACDC spacing varies) → ``NormalizeIntensityd(channel_wise)`` (MRI: z-score per
  volume; the spleen bundle clips CT HU), cached (``CacheDataset``);
- training: ``SpatialPadd`` to the patch → ``RandCropByPosNegLabeld`` 128 × 128 × 8 (192 mm in-plane: the heart with
  context), pos 1, neg 1, 2 crops per volume, 2 volumes per batch → ``RandFlipd`` on x and y → ``RandRotate90d`` in
  plane → ``RandScaleIntensityd(0.1)`` / ``RandShiftIntensityd(0.1)`` (MONAI's BraTS MRI tutorial);
- ``DiceCELoss(to_onehot_y=True, softmax=True)``, ``Adam`` at 1e-3 (the spleen bundle's 1e-4 is for 600 epochs;
  this budget allows tens);
- inference: ``sliding_window_inference`` with the patch as window, 4 per batch, overlap 0.25 (MONAI's default);
  argmax.
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
from monai.metrics import compute_dice
from monai.networks import one_hot
from monai.networks.nets import UNet
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Spacingd,
    SpatialPadd,
)

from benchmarks.baseline_training import (
    ROOT,
    SHARED_DATA,
    add_arguments,
    brief,
    finish_run,
    invert_to_input_grid,
    prediction_path,
    prepare_run,
    sliding_window_labels,
    split_from_dataset_json,
    train_within_budget,
    write_label_map,
)

DATA = SHARED_DATA / "acdc_3dcardiac_subset"
KEYS = ["image", "label"]
CLASSES = {1: "RV", 2: "MYO", 3: "LV"}
PIXDIM = (1.5, 1.5, 10.0)
PATCH = (128, 128, 8)
OVERLAP = 0.25
LR = 1e-3
VOLUMES_PER_BATCH, CROPS_PER_VOLUME = 2, 2


def default_split() -> dict:
    """``dataset.json``'s ``validation`` list as validation, the other ``training`` items as training."""
    if not (DATA / "dataset.json").is_file():
        raise SystemExit(f"{DATA}: the ACDC data is not here (it comes from ../shared); pass --split")
    return split_from_dataset_json(DATA / "dataset.json")


def preprocessing() -> Compose:
    return Compose(
        [
            LoadImaged(KEYS),
            EnsureChannelFirstd(KEYS),
            Orientationd(KEYS, axcodes="RAS"),
            Spacingd(KEYS, pixdim=PIXDIM, mode=("bilinear", "nearest")),
            NormalizeIntensityd("image", channel_wise=True),
        ]
    )


def augmentation() -> list:
    return [
        SpatialPadd(KEYS, spatial_size=PATCH),
        RandCropByPosNegLabeld(KEYS, label_key="label", spatial_size=PATCH, pos=1, neg=1, num_samples=CROPS_PER_VOLUME),
        RandFlipd(KEYS, prob=0.5, spatial_axis=0),
        RandFlipd(KEYS, prob=0.5, spatial_axis=1),
        RandRotate90d(KEYS, prob=0.5, max_k=3, spatial_axes=(0, 1)),
        RandScaleIntensityd("image", factors=0.1, prob=0.5),
        RandShiftIntensityd("image", offsets=0.1, prob=0.5),
    ]


def network() -> UNet:
    strides = ((2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 1))
    return UNet(3, 1, 4, channels=(16, 32, 64, 128, 256), strides=strides, num_res_units=2, norm="batch")


def recipe() -> dict:
    return {
        "name": "MONAI spleen-bundle UNet 3D, anisotropic strides",
        "network": "UNet(3, 1, 4, channels=(16, 32, 64, 128, 256), strides=((2,2,1),(2,2,1),(2,2,2),(2,2,1)), "
        "num_res_units=2, norm=batch)",
        "preprocessing": "LoadImaged, EnsureChannelFirstd, Orientationd(RAS), Spacingd(1.5, 1.5, 10), "
        "NormalizeIntensityd(channel_wise); CacheDataset",
        "augmentation": f"SpatialPadd, RandCropByPosNegLabeld {PATCH} pos 1 neg 1 x{CROPS_PER_VOLUME}, RandFlipd x/y, "
        "RandRotate90d in plane, RandScaleIntensityd 0.1, RandShiftIntensityd 0.1",
        "batch": f"{VOLUMES_PER_BATCH} volumes x {CROPS_PER_VOLUME} crops",
        "loss": "DiceCELoss(to_onehot_y, softmax)",
        "optimizer": f"Adam lr {LR}",
        "inference": f"sliding_window_inference roi {PATCH}, sw_batch 4, overlap {OVERLAP}; argmax; Invertd",
        "validation_metric": "mean foreground Dice on the preprocessed grid",
    }


def class_dice(labels: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Dice of classes 1..3 between two (1, *spatial) label maps (1 where both are empty)."""
    pred, true = (one_hot(t[None].long(), num_classes=4) for t in (labels, truth))
    return compute_dice(pred, true, include_background=False, ignore_empty=False)[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, 20.0, ROOT / "outputs" / "baselines" / "acdc_unet")
    args = parser.parse_args()
    split = prepare_run(args, default_split)
    start = time.monotonic()
    pre = preprocessing()
    train_ds = CacheDataset(split["training"], Compose([*pre.transforms, *augmentation()]), num_workers=args.workers)
    validation = [pre(item) for item in split["validation"]]
    setup_s = time.monotonic() - start
    loader = DataLoader(
        train_ds,
        batch_size=VOLUMES_PER_BATCH,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=args.device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    net = network().to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)

    def predict(image: torch.Tensor) -> torch.Tensor:
        return sliding_window_inference(image, PATCH, 4, net, overlap=OVERLAP)

    def validate() -> dict[str, float]:
        dice = np.stack(
            [class_dice(sliding_window_labels(predict, d["image"], args.device), d["label"]) for d in validation]
        )
        return {"val_mean_dice": float(dice.mean())} | {
            f"val_dice_{name}": float(dice[:, i].mean()) for i, name in enumerate(CLASSES.values())
        }

    budget = max(0.0, args.minutes - setup_s / 60)
    trained = train_within_budget(
        net,
        loader,
        loss_function,
        optimizer,
        budget,
        validate,
        1,
        "val_mean_dice",
        args.output_dir / "best_acdc_unet.pt",
        device=args.device,
        min_interval_s=60 * args.minutes / 8,
    )
    for item, data in zip(split["validation"], validation, strict=True):
        labels = sliding_window_labels(predict, data["image"], args.device)
        write_label_map(
            invert_to_input_grid(labels, data, pre), item["image"], prediction_path(args.output_dir, item, ".nii.gz")
        )
    metrics = finish_run(args, split, trained, net, CLASSES, recipe(), task="ACDC", setup_seconds=round(setup_s, 1))
    print(json.dumps(brief(metrics), indent=2))


if __name__ == "__main__":
    main()
