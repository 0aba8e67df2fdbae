"""One training step on slices stored as 3D files, ``(x, y, 1)``, CPU, bf16 autocast (the planned training's
default on CPUs with AVX512-BF16): our 3D UNet, whose convolutions run as 2D ones on the flat axis
(``monai_unet.networks.flat_axis``), against the same network on the 3D operators (the flat path off), against
MONAI's ``UNet`` with strides of 1 along the flat axis (what a stock 3D recipe would run on such data), and against
our 2D UNet on the same pixels (the floor).

A step: ``zero_grad``, forward, ``DiceCELoss(to_onehot_y=True, softmax=True)``, backward, ``Adam`` step, in training
mode, batch 8 of 1 × 160 × 160 × 1 (the planner's batch for such data), 2 classes, random input and labels. Ours:
the planner's topology for it, widths 16-256, five pools of (2, 2, 1), kernels 3 × 3 × 1, instance norm.

``python -m benchmarks flat_slices``; "ours" is always the 3D UNet with the flat path; the speed-up column is
baseline time / ours.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet as MonaiUNet
from torch import nn

from benchmarks.harness import Comparison, compare
from monai_unet.networks import UNet
from monai_unet.networks import folded_conv as folded_module
from monai_unet.networks.flat_axis import FlatAwareConvTranspose3d

TITLE = "Training step on (x, y, 1) slices, CPU, bf16 autocast: 2D convolutions on the flat axis vs 3D operators"

FEATURES = (16, 32, 64, 128, 256, 256)


def _ours(dims: int) -> nn.Module:
    torch.manual_seed(0)
    flat = [1] if dims == 3 else []
    return UNet(
        dims, 1, 2, features=FEATURES, padding="same", norm="instance", dropout=0.0,
        pools=[[2, 2, *flat]] * 5, kernels=[[3, 3, *flat]] * 6,
    )  # fmt: skip


class _Plain3d(nn.Module):
    """Our 3D UNet with the flat path switched off for its calls: the 3D operators, as before flat_axis.py."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _ours(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        saved_flat, saved_up = folded_module.flat_axis, FlatAwareConvTranspose3d._flat
        folded_module.flat_axis = lambda *args, **kwargs: None
        FlatAwareConvTranspose3d._flat = lambda self, x: None
        try:
            return self.net(x)
        finally:
            folded_module.flat_axis, FlatAwareConvTranspose3d._flat = saved_flat, saved_up


def _train_step(net: nn.Module, shape: tuple[int, ...]) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=generator)
    labels = torch.randint(0, 2, (shape[0], 1, *shape[2:]), generator=generator).float()
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            prediction = net(x)
        loss_function(prediction.float(), labels).backward()
        optimizer.step()

    return step


def run(quick: bool = False) -> list[Comparison]:
    batch, size = (2, 96) if quick else (8, 160)
    flat_shape, picture_shape = (batch, 1, size, size, 1), (batch, 1, size, size)
    repeats = 1 if quick else 5
    ours = ("3D UNet, flat path", _train_step(_ours(3), flat_shape))
    label = f"{batch} × 1 × {size} × {size} × 1"
    torch.manual_seed(0)
    monai = MonaiUNet(3, 1, 2, channels=FEATURES[:5], strides=[(2, 2, 1)] * 4, num_res_units=2, norm="instance")
    baselines = [
        ("same UNet, 3D operators", _train_step(_Plain3d(), flat_shape)),
        ("MONAI UNet, strides (2, 2, 1)", _train_step(monai, flat_shape)),
        ("our 2D UNet on the pixels (floor)", _train_step(_ours(2), picture_shape)),
    ]
    return [compare(label, ours, baseline, repeats=repeats) for baseline in baselines]
