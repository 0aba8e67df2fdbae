"""The training forward pass in bfloat16 where the hardware runs it natively: :class:`MixedPrecisionInferer`.

MONAI's trainers offer ``amp`` only on CUDA (``torch.autocast("cuda")`` with fp16 and a gradient scaler). On CPUs
with AVX512-BF16 or AMX, oneDNN's bfloat16 convolutions make a planned U-Net's training step about 1.5-2x faster
(``benchmarks/bench_train_precision.py``); bfloat16 keeps float32's exponent range, so no gradient scaling is needed.
This inferer is the trainer's ``inferer``: it runs the network under ``torch.autocast`` (convolutions in bfloat16,
normalisations and reductions as autocast decides) and returns float32 logits, so the loss and everything after it
stay in float32. Parameters, gradients and the optimiser's state stay float32 throughout.

On the CPU the bfloat16 forward pass also runs channels-last: the inputs are converted on each call, and the
network's parameters once, in place (the same ``Parameter`` objects, so the optimiser, checkpoints and weight
averaging are unaffected; a state dict saved this way loads into any network). oneDNN's bfloat16 convolutions
reorder contiguous tensors to that layout and back on every call; the U-Net's instance norm keeps it
(:mod:`monai_unet.networks.instance_norm`), so a planned network's step is 1.15-1.46x faster than contiguous
(``benchmarks/bench_train_precision.py``). In float32 the layout gains nothing and is not used.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

from monai_unet.inferers.fast_path import bf16_supported
from monai_unet.networks.instance_norm import channels_last_format

__all__ = ["PRECISIONS", "MixedPrecisionInferer", "uses_bf16"]

#: ``auto``: bfloat16 where :func:`~monai_unet.inferers.bf16_supported` (CPUs with AVX512-BF16 or AMX, CUDA GPUs
#: with bf16), else float32; ``bf16``: always (slow where emulated); ``fp32``: never.
PRECISIONS = ("auto", "bf16", "fp32")


def _check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def uses_bf16(precision: str, device: torch.device | str) -> bool:
    """Whether training at ``precision`` on ``device`` runs the network under bfloat16 autocast."""
    return _check(precision) == "bf16" or (precision == "auto" and bf16_supported(device))


def _convert_parameters(network: nn.Module, layout: torch.memory_format, dims: int) -> None:
    """Store ``network``'s ``dims``-dimensional parameters (convolution weights) in ``layout``, in place, once."""
    if any(p.dim() == dims and not p.is_contiguous(memory_format=layout) for p in network.parameters()):
        network.to(memory_format=layout)


class MixedPrecisionInferer(Inferer):
    """Run ``network(inputs)`` under bfloat16 autocast (per ``precision``) and return float32 outputs.

    Args:
        precision: one of :data:`PRECISIONS`.

    ``inputs``: ``(N, C, *spatial)`` float32; returns the network's output ``(N, classes, *spatial)`` in float32, on
    the inputs' device (a deeply supervised network in training: its list of such outputs, each in float32),
    channels-last where the forward pass ran so.
    """

    def __init__(self, precision: str = "auto") -> None:
        self.precision = _check(precision)

    def __call__(
        self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any
    ) -> torch.Tensor | list[torch.Tensor]:
        enabled = uses_bf16(self.precision, inputs.device)
        if enabled and inputs.device.type == "cpu" and inputs.dim() in (4, 5):
            layout = channels_last_format(inputs.dim())
            _convert_parameters(network, layout, inputs.dim())
            inputs = inputs.contiguous(memory_format=layout)
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=enabled):
            outputs = network(inputs, *args, **kwargs)
        if not enabled:
            return outputs
        return [o.float() for o in outputs] if isinstance(outputs, list) else outputs.float()
