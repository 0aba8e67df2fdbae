"""A 3D convolution whose weight gradient is computed as 2D convolutions, one spatial axis folded into the batch.

Why: on CPUs without AVX-512 (AVX2 only, as on this project's machines), oneDNN has direct (JIT) kernels for the
forward pass and the input gradient of a 3D convolution but not for its weight gradient, which falls back to im2col
+ GEMM (``x64:gemm:jit`` in ``ONEDNN_VERBOSE=1`` output). That fallback is about as fast as the alternative below
on an idle machine, but it degrades badly when the cores are contended, the usual state of a shared 2-core
machine: forward + backward of 16 → 16 channels, 3×3×3, on (2, 16, 64, 64, 16) with 2 threads took 0.11 s idle
and 0.9–2.2 s with other jobs running (the weight gradient nearly all of it), against 0.09–0.28 s for this
module. The 2D weight gradient has a direct kernel (``jit:avx2``) and degrades like any other operation.

How: a 3D convolution with kernel size ``k`` along a spatial axis is the sum over the ``k`` offsets of 2D
convolutions over the other two axes, that axis folded into the batch. So its weight gradient, one kernel slice
at a time, is the 2D weight gradient between the input slab at that offset and the output gradient. The input
(zero-padded along the folded axis) and the output gradient are each copied once, with the folded axis moved to
the front, so that every slab is a contiguous ``(S_out · N, C, ·, ·)`` view. The folded axis is the one whose
kernel size is 1 if there is one (a single 2D weight gradient, e.g. z for 3×3×1 kernels), else x (moving the
outermost axis to the front copies whole planes, the cheapest permutation). The forward pass and the input
gradient stay ``conv3d``'s.

Measured (torch 2.13 CPU, oneDNN 3.12, AVX2, 2 threads, 2 shared cores): weight gradient alone, idle machine,
within ±10 % of ``conv3d``'s for 3×3×3 kernels, up to 1.7× slower for the 3×3×1 kernels on (2, 16, 160, 160, 12);
with one core busy with another process, forward + backward 1.3–2× faster (e.g. (2, 16, 64, 64, 32) 3×3×3: idle
0.21 s → 0.19 s, one core busy 0.38–0.69 s → 0.27–0.38 s). A whole training step gains much less (the weight
gradients are only a part of it, and the copies cost time): BRATS-like 1.05–1.14×, ACDC-like about even, in
``benchmarks/bench_train_step.py``; and 100–300 MiB more peak memory.

Tried and slower: the forward pass itself as a sum of 2D convolutions (no faster than the 3D kernel, plus the slab
copies: a BRATS-sized training step got 17 % slower than with plain ``conv3d``), one 2D convolution over the slabs
stacked as channels, channels-last 2D tensors, and a dilated 2D convolution over the flattened (y, z) plane.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from monai_unet.networks.flat_axis import conv3d_as_2d, flat_axis

__all__ = ["FoldedConv3d"]


def _numeric_padding(padding: str | tuple[int, ...], kernel_size: tuple[int, ...]) -> tuple[int, int, int]:
    if padding == "valid":
        return (0, 0, 0)
    if padding == "same":
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"FoldedConv3d: padding='same' needs odd kernel sizes, got {tuple(kernel_size)}.")
        return (kernel_size[0] // 2, kernel_size[1] // 2, kernel_size[2] // 2)
    if isinstance(padding, str):
        raise ValueError(f"FoldedConv3d: padding must be 'same', 'valid' or ints, got {padding!r}.")
    px, py, pz = (int(p) for p in padding)
    return (px, py, pz)


def _folded_weight_grad(
    x: torch.Tensor, grad_out: torch.Tensor, weight: torch.Tensor, padding: tuple[int, ...], axis: int
) -> torch.Tensor:
    """The gradient of ``conv3d(x, weight, padding=padding)`` (stride 1) with respect to ``weight``.

    Computed as ``k`` 2D weight gradients (``k`` the kernel size along spatial ``axis``), that axis folded into the
    batch: ``x`` is copied once, zero-padded along ``axis``, with ``axis`` moved to the front, so that the slab of
    every kernel offset is a contiguous ``(S_out · N, C, *other two axes)`` view; ``grad_out`` is copied once
    likewise.

    Args:
        x: the convolution's input ``(N, C, X, Y, Z)``.
        grad_out: the gradient of its output ``(N, C_out, X_out, Y_out, Z_out)``.
        weight: its weight ``(C_out, C, kx, ky, kz)`` (only shape and dtype are used).
        padding: ``(px, py, pz)`` zero padding per side.
        axis: the spatial axis to fold, 0 (x), 1 (y) or 2 (z).
    """
    dim = axis + 2
    n, c = x.shape[0], x.shape[1]
    k, pad, size, size_out = weight.shape[dim], padding[axis], x.shape[dim], grad_out.shape[dim]
    order = [dim, 0, 1] + [d for d in (2, 3, 4) if d != dim]
    slabs = x.new_empty(size + 2 * pad, n, c, *(x.shape[d] for d in order[3:]))
    if pad > 0:
        slabs[:pad].zero_()
        slabs[pad + size :].zero_()
    slabs[pad : pad + size].copy_(x.permute(order))
    grad_2d = grad_out.permute(order).reshape(size_out * n, grad_out.shape[1], *(grad_out.shape[d] for d in order[3:]))
    padding_2d = [padding[a] for a in range(3) if a != axis]
    grad_weight = torch.empty_like(weight, memory_format=torch.contiguous_format)
    for offset in range(k):
        slab = slabs[offset : offset + size_out].view(size_out * n, *slabs.shape[2:])
        grad_weight.select(dim, offset).copy_(
            torch.ops.aten.convolution_backward(
                grad_2d,
                slab,
                weight.select(dim, offset),
                None,
                [1, 1],
                padding_2d,
                [1, 1],
                False,
                [0, 0],
                1,
                [False, True, False],
            )[1]
        )
    return grad_weight


class _Conv3dFoldedWeightGrad(torch.autograd.Function):
    """``conv3d`` (stride 1, dilation 1, groups 1) whose backward takes the weight gradient from 2D convolutions."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, axis):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.axis = axis
        ctx.has_bias = bias is not None
        return F.conv3d(x, weight, bias, padding=padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        padding = list(ctx.padding)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:  # first, so that its temporary copies are freed before grad_x is allocated
            grad_weight = _folded_weight_grad(x, grad_out, weight, ctx.padding, ctx.axis)
        if ctx.needs_input_grad[0]:  # the direct 3D kernel: fast
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1, 1], padding, [1, 1, 1], False, [0, 0, 0], 1, [True, False, False]
            )[0]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum((0, 2, 3, 4))
        return grad_x, grad_weight, grad_bias, None, None


class FoldedConv3d(nn.Conv3d):
    """``nn.Conv3d`` (stride 1, dilation 1, groups 1, zero padding) whose CPU weight gradient avoids oneDNN's slow path.

    A drop-in replacement: same constructor, parameters (``weight`` ``(out, in, kx, ky, kz)``, ``bias``) and
    state-dict keys as ``nn.Conv3d``, so existing checkpoints load unchanged. Padding is any per-axis amount (in
    practice ``k // 2``, ``"same"``, or 0, ``"valid"``: then z shrinks by ``kz - 1``, like x and y).

    The forward pass is always ``conv3d``. When a weight gradient will be computed on the CPU — the module is in
    training mode with ``fold_weight_grad`` set (the default), autograd is enabled, ``weight`` requires grad, the
    input is a batched ``(N, C, X, Y, Z)`` CPU tensor and CPU autocast is off — the backward pass computes the
    weight gradient as 2D weight gradients with one spatial axis (``fold_axis``) folded into the batch (see the
    module docstring for why, how and the measurements), the input and bias gradients as ``conv3d`` does.
    Everywhere else (evaluation, inference, no-grad, CUDA and other devices, frozen weights, autocast) it is exactly
    ``nn.Conv3d``; TorchScript (``torch.jit.script`` compiles only the plain path) and tracing (``torch.jit.trace``,
    ONNX export) see an ordinary 3D convolution. Set ``fold_weight_grad = False`` on an instance for the plain
    backward (e.g. where memory is tighter than time: the folded one briefly holds a copy of the input and of the
    output gradient).

    An input one voxel thick along an axis of kernel 1 (slices stored as 3D files) is convolved by ``conv2d`` in
    every mode (:mod:`~monai_unet.networks.flat_axis`), equal to ``conv3d`` to float rounding.

    Results otherwise: the output and the input gradient are bit-identical to ``nn.Conv3d``'s; the weight and bias
    gradients sum the same products in another order, so they equal ``conv3d``'s to float rounding (~1e-6 relative
    in float32, ~1e-14 in float64). Double backward (``create_graph=True`` through this layer in training mode) is not
    supported.

    Shapes: input ``(N, C_in, X, Y, Z)``; output ``(N, C_out, X + 2px - kx + 1, Y + 2py - ky + 1, Z + 2pz - kz + 1)``.

    Raises:
        ValueError: for a stride, dilation or group count other than 1, a padding mode other than ``"zeros"``, or
            ``padding="same"`` with an even kernel size.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        unsupported = [
            f"{name}={value!r}"
            for name, value, plain in (
                ("stride", self.stride, (1, 1, 1)),
                ("dilation", self.dilation, (1, 1, 1)),
                ("groups", self.groups, 1),
                ("padding_mode", self.padding_mode, "zeros"),
            )
            if value != plain
        ]
        if unsupported:
            raise ValueError(
                "FoldedConv3d supports stride 1, dilation 1, groups 1 and zero padding only; got "
                f"{', '.join(unsupported)}."
            )
        self.fold_padding = _numeric_padding(self.padding, self.kernel_size)
        # The axis whose kernel size is 1 (one 2D weight gradient, no padding), else x: moving the outermost spatial
        # axis to the front copies whole (Y, Z) planes, the cheapest of the three permutations.
        self.fold_axis = next((axis for axis, k in enumerate(self.kernel_size) if k == 1), 0)
        self.fold_weight_grad = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv3d(x)``; when training on the CPU, with the weight gradient from 2D convolutions (see above)."""
        if not torch.jit.is_scripting():  # TorchScript compiles only the plain path (this branch is dropped)
            if not torch.jit.is_tracing():
                axis = flat_axis(x, self.kernel_size, self.fold_padding)
                if axis is not None:  # one voxel thick along an axis of kernel 1: a 2D convolution (flat_axis.py)
                    return conv3d_as_2d(x, self.weight, self.bias, self.fold_padding, axis)
                if self._folds(x):
                    return self._folded_forward(x)
        return self._conv_forward(x, self.weight, self.bias)

    @torch.jit.unused
    def _folds(self, x: torch.Tensor) -> bool:
        return (
            self.fold_weight_grad
            and self.training
            and torch.is_grad_enabled()
            and self.weight.requires_grad
            and x.dim() == 5
            and x.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")
        )

    @torch.jit.unused
    def _folded_forward(self, x: torch.Tensor) -> torch.Tensor:
        # Tensor subclasses (MONAI's MetaTensor, which trainers pass in) would carry their metadata through every
        # copy of the backward pass; the convolution needs only the values.
        if type(x) is not torch.Tensor:
            x = x.as_subclass(torch.Tensor)
        return _Conv3dFoldedWeightGrad.apply(x, self.weight, self.bias, self.fold_padding, self.fold_axis)
