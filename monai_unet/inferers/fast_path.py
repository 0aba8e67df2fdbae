"""Eval-time acceleration of a network for tiled inference: BatchNorm folding, channels-last, bf16 autocast.

Policy (what :func:`prepare_network` does, in order):

1. Copy the network (the caller's module is never modified) and move the copy to the inference device.
2. Fold every BatchNorm that directly follows a convolution and is in eval mode into that convolution:
   ``w' = w · γ/√(σ² + ε)``, ``b' = (b − μ) · γ/√(σ² + ε) + β``. Which BatchNorm follows which convolution is
   observed on one example forward pass (hooks on the modules), so it works for any architecture; the folded copy
   is then checked against the original on the same input and abandoned (with a warning) if they disagree.
3. Use the channels-last memory layout (``channels_last_3d`` for 3D), which oneDNN's convolutions prefer.
4. Run under bfloat16 autocast where the hardware supports it (CPUs with AVX512-BF16 or AMX, CUDA GPUs with bf16),
   unless ``strict_fp32``. Outputs are returned as float32.

Steps 2 and 3 change results only by float32 rounding (~1e-6); step 4 changes logits by ~1e-2 relative, which
moves argmax labels only where two classes nearly tie (measured in ``benchmarks/bench_inference.py``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

from monai_unet.networks.instance_norm import channels_last_format

__all__ = ["PreparedNetwork", "bf16_supported", "fold_batch_norm", "prepare_network"]

logger = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_FOLD_TOLERANCE = 1e-4  # relative to the output's largest magnitude


def bf16_supported(device: torch.device | str) -> bool:
    """Whether bfloat16 convolutions run natively (fast) on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _fold_into(conv: nn.Module, bn: _BatchNorm) -> None:
    transposed = isinstance(conv, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias, transpose=transposed
    )
    conv.weight = nn.Parameter(weight.detach(), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=False)


def _foldable(conv: nn.Module, bn: _BatchNorm) -> bool:
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return False
    out_channels = conv.out_channels
    transposed = isinstance(conv, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    return bn.num_features == out_channels and not (transposed and conv.groups != 1)


def _conv_bn_pairs(network: nn.Module, example: torch.Tensor) -> tuple[list[tuple[str, str]], torch.Tensor]:
    """Pairs ``(conv name, bn name)`` where the BatchNorm's input is the convolution's output, and that output."""
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    consumers: dict[int, list[str]] = {}
    pairs: list[tuple[str, str]] = []
    handles = []

    def after_conv(name: str):
        def hook(_module, _inputs, output):
            produced[id(output)] = (name, output)  # keep the tensor alive so that its id stays unique

        return hook

    def before_bn(name: str):
        def hook(_module, inputs):
            key = id(inputs[0])
            if key in produced:
                pairs.append((produced[key][0], name))
                consumers.setdefault(key, []).append(name)

        return hook

    for name, module in network.named_modules():
        if isinstance(module, _CONVS):
            handles.append(module.register_forward_hook(after_conv(name)))
        elif isinstance(module, _BatchNorm):
            handles.append(module.register_forward_pre_hook(before_bn(name)))
    try:
        with torch.inference_mode():
            reference = network(example)
    finally:
        for handle in handles:
            handle.remove()
    shared = {name for names in consumers.values() if len(names) > 1 for name in names}
    convs = [c for c, _ in pairs]
    return [(c, b) for c, b in pairs if b not in shared and convs.count(c) == 1], reference


def fold_batch_norm(network: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``network`` with every eval-mode BatchNorm that follows a convolution folded into it.

    Args:
        network: any module; it is not modified.
        example: an input the network accepts, ``(N, C, *spatial)``, used to observe which BatchNorm follows
            which convolution and to check the folded copy.

    Returns:
        the folded copy (BatchNorms replaced by ``nn.Identity``), or an unfolded copy if the check fails.
    """
    folded = copy.deepcopy(network)
    pairs, reference = _conv_bn_pairs(folded, example)
    modules = dict(folded.named_modules())
    done = 0
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        if not isinstance(bn, _BatchNorm) or not _foldable(conv, bn):
            continue
        _fold_into(conv, bn)
        parent_name, _, attr = bn_name.rpartition(".")
        setattr(modules[parent_name] if parent_name else folded, attr, nn.Identity())
        done += 1
    if done == 0:
        return folded
    with torch.inference_mode():
        result = folded(example)
    scale = float(reference.abs().max()) + 1e-6
    error = float((result - reference).abs().max()) / scale
    if error > _FOLD_TOLERANCE:
        warnings.warn(
            f"BatchNorm folding changed the output by {error:.2e} (relative); using the unfolded network.",
            stacklevel=2,
        )
        return copy.deepcopy(network)
    logger.debug("folded %d BatchNorm layers into convolutions", done)
    return folded


class PreparedNetwork(nn.Module):
    """A network made ready for tile inference; call it like the network, get float32 outputs.

    Args:
        network: the (possibly folded) network, already on ``device``.
        device: where tiles run.
        channels_last: feed channels-last tensors (the network's parameters must be converted already).
        autocast_bf16: run under bfloat16 autocast.
    """

    def __init__(self, network: nn.Module, device: torch.device, channels_last: bool, autocast_bf16: bool) -> None:
        super().__init__()
        self.network = network
        self.device = device
        self.channels_last = channels_last
        self.autocast_bf16 = autocast_bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C_out, *out_spatial)`` float32 on ``x``'s device for tiles ``x`` ``(N, C_in, *spatial)``."""
        source = x.device
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=channels_last_format(x.dim()))
        context = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast_bf16 else contextlib.nullcontext()
        )
        with context:
            y = self.network(x)
        return y.to(device=source, dtype=torch.float32).contiguous()


def prepare_network(
    network: nn.Module,
    example: torch.Tensor,
    device: torch.device | str | None = None,
    fast: bool = True,
    strict_fp32: bool = False,
    backend: str = "torch",
) -> PreparedNetwork:
    """Make ``network`` ready for tile inference on ``device`` (see the module docstring for the policy).

    Args:
        network: the network; it is not modified when ``fast`` (a copy is prepared), and is moved to ``device``
            otherwise (as ``Module.to`` does).
        example: one tile ``(1, C_in, *tile)`` on any device, used to observe and check BatchNorm folding.
        device: where the network runs; the device of the network's first parameter when ``None``.
        fast: fold BatchNorm, use channels-last and (unless ``strict_fp32``) bf16 autocast.
        strict_fp32: keep every operation in float32.
        backend: ``"torch"``, or ``"onnxruntime"`` (export once, run on the CPU in float32; ``fast`` and
            ``strict_fp32`` do not apply; see :mod:`monai_unet.inferers.onnx_backend`).
    """
    first = next(network.parameters(), None)
    home = first.device if first is not None else torch.device("cpu")
    device = home if device is None else torch.device(device)
    if backend == "onnxruntime":
        from monai_unet.inferers.onnx_backend import OnnxRuntimeNetwork

        cpu = torch.device("cpu")
        return PreparedNetwork(OnnxRuntimeNetwork(network, example), cpu, channels_last=False, autocast_bf16=False)
    if backend != "torch":
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}.")
    if not fast:
        return PreparedNetwork(network.to(device), device, channels_last=False, autocast_bf16=False)
    folded = fold_batch_norm(network, example.to(home)).to(device)
    channels_last = example.dim() in (4, 5)
    if channels_last:
        folded = folded.to(memory_format=channels_last_format(example.dim()))
    use_bf16 = not strict_fp32 and bf16_supported(device)
    return PreparedNetwork(folded, device, channels_last, use_bf16)
