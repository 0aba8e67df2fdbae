"""The training step of the planned networks in float32 against bfloat16 autocast (the planner's ``precision``
``auto`` on CPUs with AVX512-BF16 or AMX): contiguous, as up to 0.15.0, and channels-last, as
:class:`~monai_unet.inferers.MixedPrecisionInferer` runs it since 0.16.0 (with the U-Net's channels-last instance
norm, :mod:`monai_unet.networks.instance_norm`).

A step is what a planned bundle's trainer runs per iteration, less the augmentation: ``zero_grad``, the forward
pass through :class:`monai_unet.inferers.MixedPrecisionInferer`, ``DiceCELoss(to_onehot_y=True, softmax=True)`` in
float32, backward, ``Adam`` step, on random patches (the timing does not depend on the values). "Ours" is bfloat16
(channels-last, then contiguous: the network called under ``torch.autocast`` directly); the baseline is the same
network in float32 (``FoldedConv3d``'s weight-gradient folding in 3D, the default float32 path), so the speed-up is
what ``precision: auto`` buys over ``precision: fp32``.

The four configurations are those ``monai-unet plan --budget-min 20`` chose on 2026-12-04 on a 2-core AVX512-BF16
EPYC (calibrated in bfloat16) for the four shared datasets:

- ISBI 2012 (2D, 1 channel, 2 classes): batch 8 of 224², widths 16-256, 5 poolings;
- CVC-ClinicDB (2D RGB, 2 classes): batch 8 of 128², widths 16-256, 5 poolings;
- ACDC (3D, 1 channel, 4 classes): batch 2 of 112 × 128 × 10, widths 16-256, anisotropic pools and kernels;
- BRATS (3D, 2 channels, 2 classes): batch 2 of 64 × 64 × 48, widths 16-256, 4 poolings.

All with instance norm, the planner's default; and the two shipped bundles' networks (0.15.0), with batch norm:

- EM membranes (2D): batch 8 of 320², widths 16-256, 5 poolings;
- brain tumour MRI (3D, 2 channels): batch 2 of 80 × 80 × 64, widths 16-256, 4 poolings.

On a CPU without native bfloat16 the autocast is emulated and slow: the benchmark says so and runs anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss

from benchmarks.harness import Comparison, compare
from monai_unet.inferers import MixedPrecisionInferer, bf16_supported
from monai_unet.networks import UNet

TITLE = "Training step of the planned networks, CPU: bfloat16 autocast (precision auto) vs float32"

_POOLS_2D = [[2, 2]] * 5
_KERNELS_2D = [[3, 3]] * 6
_WIDTHS_2D = (16, 32, 64, 128, 256, 256)
SETTINGS: list[dict] = [
    dict(label="ISBI 8×1×224²", dims=2, cin=1, classes=2, patch=(224, 224), batch=8, features=_WIDTHS_2D,
         pools=_POOLS_2D, kernels=_KERNELS_2D),
    dict(label="CVC 8×3×128²", dims=2, cin=3, classes=2, patch=(128, 128), batch=8, features=_WIDTHS_2D,
         pools=_POOLS_2D, kernels=_KERNELS_2D),
    dict(label="ACDC 2×1×112×128×10", dims=3, cin=1, classes=4, patch=(112, 128, 10), batch=2,
         features=(16, 32, 64, 128, 256, 256), pools=[[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 1], [1, 2, 1]],
         kernels=[[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 1, 3]]),
    dict(label="BRATS 2×2×64×64×48", dims=3, cin=2, classes=2, patch=(64, 64, 48), batch=2,
         features=(16, 32, 64, 128, 256), pools=[[2, 2, 2]] * 3 + [[2, 2, 1]], kernels=[[3, 3, 3]] * 5),
    dict(label="EM bundle 8×1×320², batch norm", dims=2, cin=1, classes=2, patch=(320, 320), batch=8,
         features=_WIDTHS_2D, pools=_POOLS_2D, kernels=_KERNELS_2D, norm="batch"),
    dict(label="MRI bundle 2×2×80×80×64, batch norm", dims=3, cin=2, classes=2, patch=(80, 80, 64), batch=2,
         features=(16, 32, 64, 128, 256), pools=[[2, 2, 2]] * 4, kernels=[[3, 3, 3]] * 5, norm="batch"),
]  # fmt: skip


def _step(setting: dict, mode: str) -> Callable[[], None]:
    """``mode``: ``fp32``, ``bf16`` (the inferer: channels-last) or ``bf16 contiguous`` (autocast, no conversion)."""
    torch.manual_seed(0)
    net = UNet(
        setting["dims"], setting["cin"], setting["classes"], features=setting["features"], padding="same",
        norm=setting.get("norm", "instance"), dropout=0.0, pools=setting["pools"], kernels=setting["kernels"],
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(setting["batch"], setting["cin"], *setting["patch"], generator=generator)
    label = torch.randint(0, setting["classes"], (setting["batch"], 1, *setting["patch"]), generator=generator)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    if mode == "bf16 contiguous":

        def inferer(x: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return network(x).float()

    else:
        inferer = MixedPrecisionInferer(mode)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_function(inferer(image, net), label).backward()
        optimizer.step()

    return step


def run(quick: bool = False) -> list[Comparison]:
    repeats = 1 if quick else 5
    native = "native" if bf16_supported("cpu") else "EMULATED (no AVX512-BF16/AMX: expect it slower)"
    results = []
    for setting in SETTINGS[:1] if quick else SETTINGS:
        for name, mode in (("bf16 channels-last", "bf16"), ("bf16 contiguous", "bf16 contiguous")):
            comparison = compare(
                f"{setting['label']}, {name}",
                (name, _step(setting, mode)),
                ("fp32", _step(setting, "fp32")),
                warmup=1,
                repeats=repeats,
            )
            comparison.extra["bf16 on this CPU"] = native
            results.append(comparison)
    return results
