"""Our UNet against MONAI's BasicUNet at matched width, forward and forward+backward, 2D and 3D, on CPU.

Both networks: widths 32-64-128-256-512, same padding, batch norm, ReLU, no dropout, 2×2 transposed-convolution
upsampling. BasicUNet's last up-sampling keeps 64 channels where ours halves to 32 (the paper's rule), so the two
differ slightly in FLOPs; the table gives both FLOP counts and the time per GFLOP ratio, the fair comparison.
"""

from __future__ import annotations

import torch
from monai.networks.nets import BasicUNet
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.harness import Comparison, compare
from monai_unet.networks import UNet

TITLE = "UNet vs MONAI BasicUNet (matched width, same padding, CPU)"

WIDTHS = (32, 64, 128, 256, 512)


def _networks(spatial_dims: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ours = UNet(spatial_dims, 1, 2, features=WIDTHS, padding="same", norm="batch", dropout=0.0)
    basic = BasicUNet(spatial_dims, 1, 2, features=(*WIDTHS, WIDTHS[0]), act="relu", norm="batch", dropout=0.0)
    return ours, basic


def _gflops(net: torch.nn.Module, x: torch.Tensor, backward: bool) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        y = net(x)
        if backward:
            y.float().mean().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def _step(net: torch.nn.Module, x: torch.Tensor, backward: bool):
    def run() -> None:
        if backward:
            net.train()
            net(x).mean().backward()
            net.zero_grad(set_to_none=True)
        else:
            net.eval()
            with torch.inference_mode():
                net(x)

    return run


def run(quick: bool = False) -> list[Comparison]:
    cases = [("2D 4×1×256²", 2, (4, 1, 256, 256)), ("3D 1×1×96³", 3, (1, 1, 96, 96, 96))]
    if quick:
        cases = [("2D 2×1×128²", 2, (2, 1, 128, 128)), ("3D 1×1×48³", 3, (1, 1, 48, 48, 48))]
    results = []
    for label, dims, shape in cases:
        ours, basic = _networks(dims)
        x = torch.randn(*shape)
        for backward in (False, True):
            flops_ours, flops_basic = _gflops(ours, x, backward), _gflops(basic, x, backward)
            comparison = compare(
                f"{label} {'forward+backward' if backward else 'forward'}",
                ("UNet", _step(ours, x, backward)),
                ("BasicUNet", _step(basic, x, backward)),
                warmup=1,
                repeats=2 if quick else 5,
            )
            per_gflop = (comparison.baseline.median_s / flops_basic) / (comparison.ours.median_s / flops_ours)
            comparison.extra.update(
                {
                    "GFLOP ours": f"{flops_ours:.1f}",
                    "GFLOP BasicUNet": f"{flops_basic:.1f}",
                    "time/GFLOP ratio (BasicUNet/ours)": f"{per_gflop:.2f}",
                }
            )
            results.append(comparison)
    return results
