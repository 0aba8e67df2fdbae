"""OverlapTileInferer against MONAI's ``sliding_window_inference``: end-to-end time, labels agreement, peak RSS.

Settings (both sides): roi 96³, overlap 0.5, Gaussian blending, 4 tiles per call, ``torch.inference_mode``, CPU.
Networks: MONAI's spleen-bundle ``UNet(3, 1, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
num_res_units=2, norm="batch")`` and our ``UNet`` in same mode at the same widths, both with random weights and
random BatchNorm statistics (no trained network exists here yet). The input is smooth random structure (noise
upsampled 8×), so the logits have spatial structure like an image's.

- Baseline: ``sliding_window_inference`` (fp32) followed by ``argmax`` to uint8 labels, what a bundle does.
- Ours: ``OverlapTileInferer(output="labels")`` with the default fast path (BatchNorm folded, channels-last, bf16
  autocast where the CPU supports it) — labels finalised slab by slab; also with ``strict_fp32=True`` and, for the
  spleen network when ``onnxruntime`` is installed, ``backend="onnxruntime"`` (these rows reuse the one MONAI run).
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


def _end_to_end(label: str, net: nn.Module, shape: tuple[int, ...], onnx: bool) -> list[Comparison]:
    """Ours (fast path), ours strict fp32 and (optionally) ours on ONNX Runtime, each against one MONAI run."""
    image = _image(shape)
    results: dict[str, torch.Tensor] = {}
    common = {"roi_size": ROI, "sw_batch_size": SW_BATCH, "overlap": OVERLAP, "mode": "gaussian", "output": "labels"}
    variants = {
        "ours strict fp32 (fold + channels-last)": OverlapTileInferer(**common, strict_fp32=True),
    }
    if onnx:
        variants["ours ONNX Runtime fp32"] = OverlapTileInferer(**common, backend="onnxruntime")
    fast = OverlapTileInferer(**common)
    fast_name = "ours (fold + channels-last + bf16)" if bf16_supported("cpu") else "ours (fold + channels-last)"

    def store(key: str, inferer: OverlapTileInferer):
        def call() -> None:
            results[key] = inferer(image, net)

        return call

    def baseline() -> None:
        results["MONAI"] = _monai_labels(net, image)

    case = f"{label} {'×'.join(map(str, shape))}"
    rows = [compare(case, (fast_name, store(fast_name, fast)), ("MONAI fp32", baseline), warmup=0, repeats=1)]
    for name, inferer in variants.items():  # one MONAI run per network is enough: reuse its measurement
        rows.append(Comparison(case, measure(name, store(name, inferer), warmup=0, repeats=1), rows[0].baseline))
    for row in rows:
        agreement = (results[row.ours.name] == results["MONAI"]).double().mean().item()
        row.extra.update(
            {
                "labels agree with MONAI fp32": f"{100 * agreement:.3f} %",
                "ours Mvoxel/s": _mvox_per_s(shape, row.ours.median_s),
                "MONAI Mvoxel/s": _mvox_per_s(shape, row.baseline.median_s),
                "ours peak RSS (MiB)": f"{row.ours.peak_rss_mib:.0f}",
                "MONAI peak RSS (MiB)": f"{row.baseline.peak_rss_mib:.0f}",
            }
        )
    return rows


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


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False) -> list[Comparison]:
    """Spleen network at the issue's size, the long CT, then our U-Net (at a smaller size: it is ~2.5× the work)."""
    shape = (160, 160, 64) if quick else (512, 512, 128)
    ours_shape = (160, 160, 64) if quick else (256, 256, 128)
    long_shape = (256, 256, 300) if quick else (512, 512, 1000)
    results = _end_to_end("spleen UNet (MONAI)", _spleen_net(), shape, onnx=_has_onnxruntime())
    results.append(_long_ct(long_shape, with_spleen=not quick))
    results += _end_to_end("our UNet, same", _our_net(), ours_shape, onnx=False)
    return results
