"""OverlapTileInferer against MONAI's ``sliding_window_inference``: end-to-end time, labels agreement, peak RSS.

Settings (both sides): roi 96³, overlap 0.5, Gaussian blending, 4 tiles per call, ``torch.inference_mode``, CPU.
Networks: MONAI's spleen-bundle ``UNet(3, 1, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
num_res_units=2, norm="batch")`` and our ``UNet`` in same mode at the same widths, both with random weights and
random BatchNorm statistics (no trained network exists here yet). The input is smooth random structure (noise
upsampled 8×), so the logits have spatial structure like an image's.

- Baseline: ``sliding_window_inference`` (fp32) followed by ``argmax`` to uint8 labels, what a bundle does.
- Ours: ``OverlapTileInferer(output="labels")`` with the default fast path (BatchNorm folded, channels-last, bf16
  autocast where the CPU supports it) — labels finalised slab by slab.
- Agreement: fraction of voxels whose label equals the baseline's fp32 label.
- Long CT (512×512×1000): peak RSS of both with a pointwise (1×1×1 convolution) network, which costs the same
  memory for the blending as any network but little time; our run with the spleen network is given alongside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet as MonaiUNet
from torch import nn

from benchmarks.harness import Comparison, compare, measure
from monai_unet.inferers import OverlapTileInferer, bf16_supported
from monai_unet.networks import UNet

TITLE = "Tiled inference: OverlapTileInferer vs MONAI sliding_window_inference (roi 96³, overlap 0.5, Gaussian, CPU)"

ROI = (96, 96, 96)
OVERLAP = 0.5
SW_BATCH = 4


def _randomise_batch_norm(net: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    return net.eval()


def _spleen_net() -> nn.Module:
    torch.manual_seed(0)
    net = MonaiUNet(3, 1, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm="batch")
    return _randomise_batch_norm(net)


def _our_net() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_batch_norm(
        UNet(3, 1, 2, features=(16, 32, 64, 128, 256), padding="same", norm="batch", dropout=0.0)
    )


def _image(shape: tuple[int, ...]) -> torch.Tensor:
    torch.manual_seed(1)
    coarse = torch.randn(1, 1, *(max(s // 8, 2) for s in shape))
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=False)


def _monai_labels(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        logits = sliding_window_inference(image, ROI, SW_BATCH, net, overlap=OVERLAP, mode="gaussian")
        return logits.argmax(dim=1, keepdim=True).to(torch.uint8)


def _mvox_per_s(shape: tuple[int, ...], seconds: float) -> str:
    return f"{torch.Size(shape).numel() / 1e6 / seconds:.2f}"


def _end_to_end(label: str, net: nn.Module, shape: tuple[int, ...]) -> list[Comparison]:
    image = _image(shape)
    results: dict[str, torch.Tensor] = {}
    fast = OverlapTileInferer(ROI, SW_BATCH, overlap=OVERLAP, mode="gaussian", output="labels")
    strict = OverlapTileInferer(ROI, SW_BATCH, overlap=OVERLAP, mode="gaussian", output="labels", strict_fp32=True)

    def ours() -> None:
        results["ours"] = fast(image, net)

    def ours_strict() -> None:
        results["strict"] = strict(image, net)

    def baseline() -> None:
        results["monai"] = _monai_labels(net, image)

    fast_name = "ours (fold + channels-last + bf16)" if bf16_supported("cpu") else "ours (fold + channels-last)"
    main = compare(
        f"{label} {'×'.join(map(str, shape))}", (fast_name, ours), ("MONAI fp32", baseline), warmup=0, repeats=1
    )
    strict_row = compare(
        f"{label} {'×'.join(map(str, shape))}, strict fp32",
        ("ours strict fp32 (fold + channels-last)", ours_strict),
        ("MONAI fp32", baseline),
        warmup=0,
        repeats=1,
    )
    for row, key in ((main, "ours"), (strict_row, "strict")):
        agreement = (results[key] == results["monai"]).double().mean().item()
        row.extra.update(
            {
                "labels agree with MONAI fp32": f"{100 * agreement:.3f} %",
                "ours Mvoxel/s": _mvox_per_s(shape, row.ours.median_s),
                "MONAI Mvoxel/s": _mvox_per_s(shape, row.baseline.median_s),
                "ours peak RSS (MiB)": f"{row.ours.peak_rss_mib:.0f}",
                "MONAI peak RSS (MiB)": f"{row.baseline.peak_rss_mib:.0f}",
            }
        )
    return [main, strict_row]


def _long_ct(shape: tuple[int, ...], with_spleen: bool) -> Comparison:
    torch.manual_seed(2)
    pointwise = nn.Conv3d(1, 2, kernel_size=1).eval()
    image = _image(shape)
    ours = OverlapTileInferer(ROI, SW_BATCH, overlap=OVERLAP, mode="gaussian", output="labels")
    extra: dict[str, str] = {}
    if with_spleen:  # measured first, before MONAI's run grows the process
        net = _spleen_net()
        spleen = measure("ours labels, spleen net", lambda: ours(image, net), warmup=0, repeats=1)
        extra = {
            "ours with spleen net (s)": f"{spleen.median_s:.1f}",
            "ours with spleen net peak RSS (MiB)": f"{spleen.peak_rss_mib:.0f}",
            "ours with spleen net Mvoxel/s": _mvox_per_s(shape, spleen.median_s),
        }
    row = compare(
        f"long CT {'×'.join(map(str, shape))}, pointwise net (memory)",
        ("ours labels", lambda: ours(image, pointwise)),
        ("MONAI + argmax", lambda: _monai_labels(pointwise, image)),
        warmup=0,
        repeats=1,
    )
    row.extra.update(
        {
            "input (MiB)": f"{image.numel() * 4 / 2**20:.0f}",
            "ours peak RSS (MiB)": f"{row.ours.peak_rss_mib:.0f}",
            "MONAI peak RSS (MiB)": f"{row.baseline.peak_rss_mib:.0f}",
            **extra,
        }
    )
    return row


def run(quick: bool = False) -> list[Comparison]:
    shape = (160, 160, 64) if quick else (512, 512, 128)
    long_shape = (256, 256, 300) if quick else (512, 512, 1000)
    results = _end_to_end("spleen UNet (MONAI)", _spleen_net(), shape)
    results += _end_to_end("our UNet, same", _our_net(), shape)
    results.append(_long_ct(long_shape, with_spleen=not quick))
    return results
