"""One training step of 3D networks on CPU: our UNet with ``FoldedConv3d`` against the same UNet with ``nn.Conv3d``
and against MONAI's ``UNet`` (the spleen bundle's configuration) and ``BasicUNet``.

A step: ``zero_grad``, forward, ``DiceCELoss(to_onehot_y=True, softmax=True)``, backward, ``Adam`` step, in training
mode, on random input and random labels (the timing does not depend on the values).

- **BRATS-like**: batch 2 of 2 × 64³ (FLAIR + T1c at 2 mm), 2 classes. Ours: the MRI bundle's network,
  ``UNet(3, 2, 2, features=(16, 32, 64, 128), padding="same", norm="batch", dropout=0)``. MONAI: the spleen bundle's
  ``UNet(3, 2, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm="batch")`` and
  ``BasicUNet(3, 2, 2)`` (its defaults: features 32, 32, 64, 128, 256, 32, instance norm, LeakyReLU).
- **ACDC-like**: batch 2 of 1 × 160 × 160 × 12 (cine MRI, 10 mm slices), 4 classes. Ours: features
  (16, 32, 64, 128, 256), same padding, batch norm, ``pools=[[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]``,
  ``kernels=[[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]]`` (nnU-Net's plan for such data). MONAI: the
  spleen-bundle ``UNet`` with the strides of ``benchmarks/baseline_acdc_unet.py``,
  ``((2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 1))``. ``BasicUNet`` cannot take 12 slices (it pools z 4 times).
- **one core busy**: the FoldedConv3d / Conv3d comparisons again while a second process spins on one core (a
  ``while True: pass`` subprocess started and stopped by this benchmark), the state of this project's shared
  2-core machines much of the time, under which ``conv3d``'s weight gradient (oneDNN's im2col + GEMM fallback on
  AVX2 CPUs) slows down more than the 2D weight gradients FoldedConv3d uses.

Steps take seconds and the machines are shared: single runs vary by ±30 % or more; compare several runs.

"ours" is always the UNet with ``FoldedConv3d`` (the default); the speed-up column is baseline time / ours.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet
from monai.networks.nets import UNet as MonaiUNet
from torch import nn

from benchmarks.harness import Comparison, compare
from monai_unet.networks import FoldedConv3d, UNet

TITLE = "Training step (forward, DiceCE, backward, Adam) of 3D networks, CPU: FoldedConv3d vs Conv3d vs MONAI"

ACDC_POOLS = [[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]
ACDC_KERNELS = [[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
SPLEEN = dict(channels=(16, 32, 64, 128, 256), num_res_units=2, norm="batch")


def _ours_brats(fold: bool) -> nn.Module:
    torch.manual_seed(0)
    net = UNet(3, 2, 2, features=(16, 32, 64, 128), padding="same", norm="batch", dropout=0.0)
    return _set_folding(net, fold)


def _ours_acdc(fold: bool) -> nn.Module:
    torch.manual_seed(0)
    net = UNet(
        3, 1, 4, features=(16, 32, 64, 128, 256), padding="same", norm="batch", dropout=0.0, pools=ACDC_POOLS,
        kernels=ACDC_KERNELS,
    )  # fmt: skip
    return _set_folding(net, fold)


def _set_folding(net: nn.Module, fold: bool) -> nn.Module:
    for module in net.modules():
        if isinstance(module, FoldedConv3d):
            module.fold_weight_grad = fold
    return net


def _train_step(net: nn.Module, shape: tuple[int, ...], classes: int) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=generator)
    labels = torch.randint(0, classes, (shape[0], 1, *shape[2:]), generator=generator).float()
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_function(net(x), labels).backward()
        optimizer.step()

    return step


@contextlib.contextmanager
def _one_core_busy() -> Iterator[None]:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.terminate()
        spinner.wait()


def _settings(quick: bool) -> list[dict]:
    brats_shape = (1, 2, 48, 48, 48) if quick else (2, 2, 64, 64, 64)
    acdc_shape = (1, 1, 96, 96, 8) if quick else (2, 1, 160, 160, 12)
    return [
        dict(
            label=f"BRATS-like {brats_shape[0]}×{brats_shape[1]}×{brats_shape[2]}³",
            shape=brats_shape,
            classes=2,
            ours=_ours_brats,
            baselines=[
                ("MONAI UNet (spleen)", lambda: MonaiUNet(3, 2, 2, strides=(2, 2, 2, 2), **SPLEEN)),
                ("MONAI BasicUNet", lambda: BasicUNet(3, 2, 2)),
            ],
        ),
        dict(
            label="ACDC-like {}×{}×{}×{}×{}".format(*acdc_shape),
            shape=acdc_shape,
            classes=4,
            ours=_ours_acdc,
            baselines=[
                (
                    "MONAI UNet (spleen, ACDC strides)",
                    lambda: MonaiUNet(3, 1, 4, strides=((2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 1)), **SPLEEN),
                ),
            ],
        ),
    ]


def _compare(label: str, setting: dict, name: str, baseline: nn.Module, repeats: int) -> Comparison:
    ours = setting["ours"](True)
    comparison = compare(
        label,
        ("UNet + FoldedConv3d", _train_step(ours, setting["shape"], setting["classes"])),
        (name, _train_step(baseline, setting["shape"], setting["classes"])),
        warmup=1,
        repeats=repeats,
    )
    comparison.extra["params ours / baseline (M)"] = (
        f"{sum(p.numel() for p in ours.parameters()) / 1e6:.2f} / "
        f"{sum(p.numel() for p in baseline.parameters()) / 1e6:.2f}"
    )
    return comparison


def run_setting(setting: dict, repeats: int, busy: bool = False, monai: bool = True) -> list[Comparison]:
    """The comparisons of one setting: against our UNet with ``nn.Conv3d`` and (``monai``) MONAI's networks."""
    results = []
    context = _one_core_busy() if busy else contextlib.nullcontext()
    suffix = ", one core busy" if busy else ""
    with context:
        results.append(
            _compare(f"{setting['label']}{suffix}", setting, "UNet + Conv3d", setting["ours"](False), repeats)
        )
        if monai:
            for name, build in setting["baselines"]:
                torch.manual_seed(0)
                results.append(_compare(f"{setting['label']}{suffix}", setting, name, build(), repeats))
    return results


def run(quick: bool = False) -> list[Comparison]:
    repeats = 1 if quick else 3
    results = []
    for setting in _settings(quick):
        results += run_setting(setting, repeats)
    for setting in _settings(quick):
        results += run_setting(setting, repeats, busy=True, monai=False)
    return results
