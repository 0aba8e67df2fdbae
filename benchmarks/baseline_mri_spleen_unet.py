"""The stock-MONAI baseline for the MRI bundle: the spleen bundle's ``UNet`` (3D) with stock transforms, same budget.

``python -m benchmarks.baseline_mri_spleen_unet [--minutes 26] [--output-dir outputs/baselines/mri_spleen_unet]
[--split SPLIT.json] [--seed 0] [--device cuda] [--workers N] [--write-split FILE]``

Needs ``../shared/data/brats2013_deepmedic_subset``. Trains on pat0005 and pat0006 and validates on pat0004, the
split of ``bundles/brain_tumor_mri_segmentation``, for the same wall-clock budget (validation every 20 epochs
included, best epoch by validation Dice at 2 mm kept). Then it scores, with the same code on pat0004's own 1-mm grid,
the best baseline epoch (its prediction inverted with ``Invertd``) and the MRI bundle's shipped weights (its own
``inference.json`` run with the stock ``monai.bundle`` runner, NIfTI output). With ``--split`` (items
``{"image": [flair, t1c], "label": OTMultiClass}``, e.g. a BRATS 3-fold split: two subjects for training, the third
for validation) it trains and validates on that split instead (validation Dice at 2 mm averaged over the validation
subjects), and the bundle is not scored (its weights were trained on pat0005 and pat0006). The recipe is the spleen
bundle's, with this task's channels, labels and intensities:

- ``UNet(spatial_dims=3, in_channels=2, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
  num_res_units=2, norm="batch")``;
- ``LoadImaged`` (FLAIR and T1c stacked) → ``EnsureChannelFirstd`` → ``Orientationd("RAS")`` → ``Spacingd`` 2 mm
  (ours; the spleen bundle uses 1.5) → ``NormalizeIntensityd(nonzero, channel_wise)`` (MRI; the spleen bundle clips
  CT HU) → ``CropForegroundd`` → ``RandCropByPosNegLabeld`` 4 × 64³ (ours; the spleen bundle uses 96³), whole
  tumour (label > 0) as class 1;
- ``DiceCELoss(to_onehot_y=True, softmax=True)``, Adam at 1e-3 (our learning rate; the spleen bundle uses 1e-4);
- inference: ``sliding_window_inference`` with 64³ windows, 4 per batch, overlap 0.5.

Writes ``summary.json``; also, like every baseline script, the validation subjects' predictions on their own grids,
``predictions/<case>_seg.nii.gz`` (uint8, 1 = whole tumour; ``<case>`` is the subject's folder), their scores by
``benchmarks.scoring`` (whole tumour = ground-truth values 1–4; Dice, HD95 in mm) in ``metrics.json``, and
``history.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
from monai.networks.nets import UNet
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    Lambdad,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    Spacingd,
)
from monai.utils import set_determinism

from benchmarks.baseline_training import (
    add_arguments,
    brief,
    finish_run,
    invert_to_input_grid,
    prediction_path,
    prepare_run,
    sliding_window_labels,
    train_within_budget,
    write_label_map,
)

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "brain_tumor_mri_segmentation"
DATA = ROOT.parent / "shared" / "data" / "brats2013_deepmedic_subset"
TRAIN, VALIDATION = ("pat0005", "pat0006"), "pat0004"
PATCH = (64, 64, 64)
CLASSES, TRUTH_VALUES = {1: "whole tumour"}, {1: [1, 2, 3, 4]}


def _item(subject: str) -> dict:
    folder = DATA / f"brats_2013_{subject}_1"
    channels = [str(folder / "Flair_subtrMeanDivStd.nii.gz"), str(folder / "T1c_subtrMeanDivStd.nii.gz")]
    return {"image": channels, "label": str(folder / "OTMultiClass.nii.gz")}


def _default_split() -> dict:
    return {"training": [_item(s) for s in TRAIN], "validation": [_item(VALIDATION)]}


def _preprocessing() -> list:
    keys = ["image", "label"]
    return [
        LoadImaged(keys),
        EnsureChannelFirstd(keys),
        Lambdad("label", lambda x: (x > 0).float()),  # whole tumour
        Orientationd(keys, axcodes="RAS"),
        Spacingd(keys, pixdim=(2.0, 2.0, 2.0), mode=("bilinear", "nearest")),
        NormalizeIntensityd("image", nonzero=True, channel_wise=True),
        CropForegroundd(keys, source_key="image"),
    ]


def _network() -> UNet:
    return UNet(3, 2, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm="batch")


def _scores(prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Whole-tumour Dice, IoU, HD95 and symmetric average surface distance (mm) of two binary volumes."""
    pred, true = prediction > 0, truth > 0
    overlap = np.logical_and(pred, true).sum()
    as_tensor = [torch.as_tensor(a)[None, None] for a in (pred, true)]
    return {
        "dice": float(2 * overlap / (pred.sum() + true.sum())),
        "iou": float(overlap / np.logical_or(pred, true).sum()),
        "hd95_mm": compute_hausdorff_distance(*as_tensor, percentile=95, spacing=spacing).item(),
        "asd_mm": compute_average_surface_distance(*as_tensor, symmetric=True, spacing=spacing).item(),
    }


def _train_baseline(minutes: float, output_dir: Path, split: dict | None = None, seed: int = 0, device="cpu") -> dict:
    split = _default_split() if split is None else split
    set_determinism(seed=seed)
    keys = ["image", "label"]
    train = Compose(
        [
            *_preprocessing(),
            RandCropByPosNegLabeld(keys, label_key="label", spatial_size=PATCH, pos=1, neg=1, num_samples=4),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
        ]
    )
    loader = DataLoader(Dataset(split["training"], train), batch_size=1, shuffle=True, num_workers=0)
    validation = [Compose(_preprocessing())(item) for item in split["validation"]]
    net = _network().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)

    def validate() -> dict[str, float]:
        dice = []
        for case in validation:
            logits = sliding_window_inference(case["image"][None].to(device), PATCH, 4, net, overlap=0.5)
            prediction, truth = logits.argmax(1)[0].cpu().numpy() > 0, case["label"][0].numpy() > 0
            dice.append(2 * np.sum(prediction & truth) / (prediction.sum() + truth.sum()))
        return {"dice_2mm": float(np.mean(dice))}

    trained = train_within_budget(
        net,
        loader,
        loss_function,
        optimizer,
        minutes,
        validate,
        20,
        "dice_2mm",
        output_dir / "best_spleen_unet.pt",
        device=device,
    )
    return {"net": net, **trained}


def _baseline_on_own_grid(net: UNet, item: dict | None = None, device="cpu") -> np.ndarray:
    """The baseline's label map for a subject (default: the validation subject), inverted to its own grid
    (nibabel's index order)."""
    preprocessing = Compose(_preprocessing())
    data = preprocessing(_item(VALIDATION) if item is None else item)
    labels = sliding_window_labels(
        lambda x: sliding_window_inference(x, PATCH, 4, net, overlap=0.5), data["image"], device
    )
    return invert_to_input_grid(labels, data, preprocessing)


def _bundle_on_own_grid(workdir: Path) -> np.ndarray:
    """The MRI bundle's shipped weights: its inference.json with the stock runner, NIfTI output, read back."""
    dataset = workdir / "dataset.json"
    dataset.write_text(json.dumps({"test": [{"image": _item(VALIDATION)["image"]}]}))
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(BUNDLE / "configs" / "inference.json"),
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--bundle_root",
        str(BUNDLE),
        "--dataset_dir",
        str(dataset),  # a folder of images, or a dataset.json with a "test" list
        "--output_dir",
        str(workdir / "out"),
        "--output_ext",
        ".nii.gz",
        "--save_overlays",
        "false",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    (written,) = (workdir / "out").rglob("*.nii.gz")
    image = nib.load(written)
    reference = nib.load(_item(VALIDATION)["label"])
    if not np.allclose(image.affine, reference.affine, atol=1e-4) or image.shape[:3] != reference.shape[:3]:
        raise RuntimeError(f"{written}: not on the grid of {_item(VALIDATION)['label']}")
    return np.asarray(image.dataobj)


def _truth(item: dict) -> tuple[np.ndarray, tuple[float, ...]]:
    label = nib.load(item["label"])
    return np.asarray(label.dataobj) > 0, tuple(float(s) for s in label.header.get_zooms()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, 26.0, ROOT / "outputs" / "baselines" / "mri_spleen_unet")
    args = parser.parse_args()
    if args.split is None and not DATA.is_dir():
        raise SystemExit(f"{DATA}: the BRATS data is not here (it comes from ../shared)")
    split = prepare_run(args, _default_split)
    trained = _train_baseline(args.minutes, args.output_dir, split, args.seed, args.device)
    rows = []
    for item in split["validation"]:
        prediction = _baseline_on_own_grid(trained["net"], item, args.device)
        write_label_map(prediction, item["image"], prediction_path(args.output_dir, item, ".nii.gz"))
        rows.append(_scores(prediction, *_truth(item)))
    baseline = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    ours = None
    if args.split is None:
        with tempfile.TemporaryDirectory() as workdir:
            ours = _scores(_bundle_on_own_grid(Path(workdir)), *_truth(_item(VALIDATION)))
    recipe = {
        "name": "MONAI spleen-bundle UNet 3D",
        "network": "UNet(3, 2, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm=batch)",
        "preprocessing": "LoadImaged (FLAIR, T1c), EnsureChannelFirstd, Orientationd(RAS), Spacingd 2 mm, "
        "NormalizeIntensityd(nonzero, channel_wise), CropForegroundd; whole tumour (label > 0) as class 1",
        "augmentation": f"RandCropByPosNegLabeld 4 x {PATCH} pos 1 neg 1, RandFlipd x",
        "loss": "DiceCELoss(to_onehot_y, softmax)",
        "optimizer": "Adam lr 1e-3",
        "inference": f"sliding_window_inference roi {PATCH}, sw_batch 4, overlap 0.5; argmax; Invertd",
        "validation_metric": "whole-tumour Dice at 2 mm every 20 epochs",
    }
    metrics = finish_run(args, split, trained, trained["net"], CLASSES, recipe, TRUTH_VALUES, task="BRATS 2013")
    summary = {
        "minutes": args.minutes,
        "baseline_spleen_unet": {
            "epochs": trained["epochs"],
            "best_epoch": trained["best_epoch"],
            "parameters": sum(p.numel() for p in trained["net"].parameters()),
            "scores": baseline,
        },
        "mri_bundle": {"scores": ours} if ours is not None else None,
        "history": trained["history"],
    }
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(json.dumps(brief(metrics), indent=2))


if __name__ == "__main__":
    main()
