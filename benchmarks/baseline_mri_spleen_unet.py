"""The stock-MONAI baseline for the MRI bundle: the spleen bundle's ``UNet`` (3D) with stock transforms, same budget.

``python -m benchmarks.baseline_mri_spleen_unet [--minutes 26] [--output-dir outputs/baselines/mri_spleen_unet]``

Needs ``../shared/data/brats2013_deepmedic_subset``. Trains on pat0005 and pat0006 and validates on pat0004, the
split of ``bundles/brain_tumor_mri_segmentation``, for the same wall-clock budget (validation every 20 epochs
included, best epoch by validation Dice at 2 mm kept). Then it scores, with the same code on pat0004's own 1-mm grid,
the best baseline epoch (its prediction inverted with ``Invertd``) and the MRI bundle's shipped weights (its own
``inference.json`` run with the stock ``monai.bundle`` runner, NIfTI output). The recipe is the spleen bundle's, with
this task's channels, labels and intensities:

- ``UNet(spatial_dims=3, in_channels=2, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
  num_res_units=2, norm="batch")``;
- ``LoadImaged`` (FLAIR and T1c stacked) → ``EnsureChannelFirstd`` → ``Orientationd("RAS")`` → ``Spacingd`` 2 mm
  (ours; the spleen bundle uses 1.5) → ``NormalizeIntensityd(nonzero, channel_wise)`` (MRI; the spleen bundle clips
  CT HU) → ``CropForegroundd`` → ``RandCropByPosNegLabeld`` 4 × 64³ (ours; the spleen bundle uses 96³), whole
  tumour (label > 0) as class 1;
- ``DiceCELoss(to_onehot_y=True, softmax=True)``, Adam at 1e-3 (our learning rate; the spleen bundle uses 1e-4);
- inference: ``sliding_window_inference`` with 64³ windows, 4 per batch, overlap 0.5.
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
from monai.data import DataLoader, Dataset, decollate_batch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
from monai.networks.nets import UNet
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    Invertd,
    Lambdad,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    Spacingd,
)
from monai.utils import set_determinism

from benchmarks.baseline_training import train_within_budget

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "brain_tumor_mri_segmentation"
DATA = ROOT.parent / "shared" / "data" / "brats2013_deepmedic_subset"
TRAIN, VALIDATION = ("pat0005", "pat0006"), "pat0004"
PATCH = (64, 64, 64)


def _item(subject: str) -> dict:
    folder = DATA / f"brats_2013_{subject}_1"
    channels = [str(folder / "Flair_subtrMeanDivStd.nii.gz"), str(folder / "T1c_subtrMeanDivStd.nii.gz")]
    return {"image": channels, "label": str(folder / "OTMultiClass.nii.gz")}


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


def _train_baseline(minutes: float, output_dir: Path) -> dict:
    set_determinism(seed=0)
    keys = ["image", "label"]
    train = Compose(
        [
            *_preprocessing(),
            RandCropByPosNegLabeld(keys, label_key="label", spatial_size=PATCH, pos=1, neg=1, num_samples=4),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
        ]
    )
    loader = DataLoader(Dataset([_item(s) for s in TRAIN], train), batch_size=1, shuffle=True, num_workers=0)
    validation = Compose(_preprocessing())(_item(VALIDATION))
    net = _network()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)

    def validate() -> dict[str, float]:
        logits = sliding_window_inference(validation["image"][None], PATCH, 4, net, overlap=0.5)
        prediction, truth = logits.argmax(1)[0].numpy() > 0, validation["label"][0].numpy() > 0
        return {"dice_2mm": float(2 * np.sum(prediction & truth) / (prediction.sum() + truth.sum()))}

    trained = train_within_budget(
        net, loader, loss_function, optimizer, minutes, validate, 20, "dice_2mm", output_dir / "best_spleen_unet.pt"
    )
    return {"net": net, **trained}


def _baseline_on_own_grid(net: UNet) -> np.ndarray:
    """The baseline's label map for the validation subject, inverted to its own grid (nibabel's index order)."""
    preprocessing = Compose(_preprocessing())
    data = preprocessing(_item(VALIDATION))
    with torch.no_grad():
        logits = sliding_window_inference(data["image"][None], PATCH, 4, net, overlap=0.5)
    data["pred"] = decollate_batch(logits.argmax(1, keepdim=True))[0]
    data["pred"].applied_operations = data["image"].applied_operations
    data["pred"].meta = data["image"].meta
    inverted = Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=True)(data)
    return np.asarray(inverted["pred"][0])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=26.0, help="training budget, validation included")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "baselines" / "mri_spleen_unet")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA}: the BRATS data is not here (it comes from ../shared)")
    torch.set_num_threads(2)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    label = nib.load(_item(VALIDATION)["label"])
    truth, spacing = np.asarray(label.dataobj) > 0, tuple(float(s) for s in label.header.get_zooms()[:3])
    trained = _train_baseline(args.minutes, args.output_dir)
    baseline = _scores(_baseline_on_own_grid(trained["net"]), truth, spacing)
    with tempfile.TemporaryDirectory() as workdir:
        ours = _scores(_bundle_on_own_grid(Path(workdir)), truth, spacing)
    summary = {
        "minutes": args.minutes,
        "baseline_spleen_unet": {
            "epochs": trained["epochs"],
            "best_epoch": trained["best_epoch"],
            "parameters": sum(p.numel() for p in trained["net"].parameters()),
            "scores": baseline,
        },
        "mri_bundle": {"scores": ours},
        "history": trained["history"],
    }
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
