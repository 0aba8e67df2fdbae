"""Instance normalisation that keeps the channels-last layout on the CPU, so that the U-Net can train channels-last.

Why: oneDNN's bfloat16 convolutions want channels-last (``N, *spatial, C`` in memory). Fed a contiguous tensor, each
one reorders its input to that layout and its output back (one 16 → 16, 3 × 3 × 1 convolution of the ACDC plan's
full-resolution level: 11.7 ms contiguous against 3.1 ms channels-last, most of it the reorders). A channels-last
network avoids the reorders, but ``torch.nn.functional.instance_norm`` makes its input contiguous (it normalises a
``(1, N·C, *spatial)`` view), so in a U-Net with instance norm every layer converted back and forth and a
channels-last training step was slower than a contiguous one (measured in ``benchmarks/RESULTS.md``, eleventh and
twentieth sessions).

How: instance norm of one sample is batch norm of a batch of one, and ``torch.native_batch_norm`` has channels-last
kernels on the CPU (float32 statistics from bfloat16 input, as ``instance_norm``'s). So each sample is normalised by
``native_batch_norm`` in training mode without running statistics, its gradient by
``native_batch_norm_backward``, and the samples are concatenated: the same arithmetic as ``instance_norm``'s (the
same output to float rounding, checked in ``tests/test_networks_instance_norm.py``), in the input's layout. Only
``_apply_instance_norm`` is replaced, so ``nn.InstanceNorm*d``'s own forward pass (its input checks, unbatched
inputs) runs as before; contiguous inputs, other devices, running statistics, TorchScript and tracing take
``F.instance_norm``.

Measured (torch 2.13 CPU, 2 threads, AVX512-BF16 and AMX): a bf16 training step of the ACDC plan's network (batch 2
of 128 × 160 × 10) took 0.87 s contiguous, 0.88 s channels-last with ``instance_norm`` and 0.66 s channels-last with
this module (ad hoc); ``benchmarks/bench_train_precision.py`` gives 1.15-1.46x for the planned and shipped networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["InstanceNorm2d", "InstanceNorm3d", "channels_last_format"]


def channels_last_format(ndim: int) -> torch.memory_format:
    """The channels-last memory format of a batched tensor of ``ndim`` dimensions (4: 2D images, 5: volumes)."""
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


class _PerSampleBatchNorm(torch.autograd.Function):
    """Instance norm of ``x`` ``(N, C, *spatial)`` as ``N`` batch norms of one sample each, in ``x``'s layout."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        eps: float,
    ) -> torch.Tensor:
        outputs, means, inverse_stds = [], [], []
        for sample in x.split(1):
            output, mean, inverse_std = torch.native_batch_norm(sample, weight, bias, None, None, True, 0.0, eps)
            outputs.append(output)
            means.append(mean)
            inverse_stds.append(inverse_std)
        ctx.save_for_backward(x, weight, torch.stack(means), torch.stack(inverse_stds))
        ctx.eps = eps
        return torch.cat(outputs)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, means, inverse_stds = ctx.saved_tensors
        grad = grad.contiguous(memory_format=channels_last_format(x.dim()))
        mask = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        grad_inputs, grad_weight, grad_bias = [], None, None
        for i, (sample, sample_grad) in enumerate(zip(x.split(1), grad.split(1), strict=True)):
            gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
                sample_grad, sample, weight, None, None, means[i], inverse_stds[i], True, ctx.eps, mask
            )
            grad_inputs.append(gx)
            if mask[1]:
                grad_weight = gw if grad_weight is None else grad_weight + gw
            if mask[2]:
                grad_bias = gb if grad_bias is None else grad_bias + gb
        return (torch.cat(grad_inputs) if mask[0] else None), grad_weight, grad_bias, None


def _channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is a CPU tensor stored channels-last (and not also contiguous, as a 1-channel one can be)."""
    on_cpu = x.device.type == "cpu" and x.dim() in (4, 5)
    return on_cpu and not x.is_contiguous() and x.is_contiguous(memory_format=channels_last_format(x.dim()))


class _KeepsChannelsLast(nn.Module):
    """``_apply_instance_norm`` of the two classes below, which ``nn.InstanceNorm*d.forward`` calls on batched input."""

    def _apply_instance_norm(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript compiles only the plain path (this branch is dropped)
            if not torch.jit.is_tracing() and not self.track_running_stats and _channels_last(x):
                return self._per_sample(x)
        # torch's own body of this method (TorchScript compiles no super() call)
        momentum = self.momentum if self.momentum is not None else 0.0
        use_input_stats = self.training or not self.track_running_stats
        return F.instance_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats, momentum, self.eps
        )

    @torch.jit.unused
    def _per_sample(self, x: torch.Tensor) -> torch.Tensor:
        return _PerSampleBatchNorm.apply(x, self.weight, self.bias, self.eps)


class InstanceNorm3d(_KeepsChannelsLast, nn.InstanceNorm3d):
    """``nn.InstanceNorm3d`` (same parameters and state-dict keys) that keeps a channels-last CPU input channels-last.

    ``x``: batched ``(N, C, X, Y, Z)``; returns the same shape, layout and dtype.
    """


class InstanceNorm2d(_KeepsChannelsLast, nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters and state-dict keys) that keeps a channels-last CPU input channels-last.

    ``x``: batched ``(N, C, X, Y)``; returns the same shape, layout and dtype.
    """
