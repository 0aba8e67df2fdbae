"""3D convolutions over an axis one voxel thick, run as the 2D convolutions they are.

Slices stored as 3D files (a 2D dataset exported as ``(x, y, 1)`` NIfTI, a single-frame DICOM read by ITK) give a 3D
network inputs one voxel thick along one axis; the planner then puts a kernel (and a pooling factor) of 1 along it.
``conv3d`` does not notice: oneDNN runs its 3D kernels. Squeezing that axis out of the input and the weight gives
the same convolution as ``conv2d`` / ``conv_transpose2d``: a bf16 training step of the planner's network for such
data (widths 16-256, batch 8 of 160 × 160 × 1, 2 threads) takes 249 ms instead of 649 ms, 0.93× the speed of the
same network built 2D (``benchmarks/bench_flat_slices.py``). The other layers of the U-Net (instance norm, max
pooling) cost little on such inputs and stay 3D.

Used by :class:`~monai_unet.networks.folded_conv.FoldedConv3d` and :class:`FlatAwareConvTranspose3d` (the U-Net's
3D convolutions and up-convolutions); parameters and state-dict keys are those of ``nn.Conv3d`` /
``nn.ConvTranspose3d``, so checkpoints load unchanged. Results equal the 3D operators' to float rounding (another
kernel sums the same products). TorchScript and tracing (ONNX export) see the plain 3D operator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FlatAwareConvTranspose3d", "conv3d_as_2d", "flat_axis"]


def flat_axis(
    x: torch.Tensor, kernel_size: Sequence[int], padding: Sequence[int], stride: Sequence[int] = (1, 1, 1)
) -> int | None:
    """The spatial axis (0, 1 or 2) of a batched ``(N, C, X, Y, Z)`` input that is one voxel thick and that the
    kernel leaves one voxel thick (kernel 1, no padding, stride 1 along it); None when there is none."""
    if x.dim() != 5:
        return None
    for axis in range(3):
        if x.shape[axis + 2] == 1 and kernel_size[axis] == 1 and padding[axis] == 0 and stride[axis] == 1:
            return axis
    return None


def _without(values: Sequence[int], axis: int) -> list[int]:
    return [int(v) for a, v in enumerate(values) if a != axis]


def conv3d_as_2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: Sequence[int],
    axis: int,
    stride: Sequence[int] = (1, 1, 1),
    transposed: bool = False,
) -> torch.Tensor:
    """``conv3d`` (or, ``transposed``, ``conv_transpose3d``; dilation 1, groups 1, no output padding) computed by
    its 2D counterpart, for an ``axis`` that :func:`flat_axis` found: ``(N, C_in, X, Y, Z)`` in,
    ``(N, C_out, X', Y', Z')`` out, one voxel along ``axis`` on both sides."""
    dim = axis + 2
    convolve = F.conv_transpose2d if transposed else F.conv2d
    return convolve(
        x.squeeze(dim), weight.squeeze(dim), bias, stride=_without(stride, axis), padding=_without(padding, axis)
    ).unsqueeze(dim)


class FlatAwareConvTranspose3d(nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` that computes itself as ``conv_transpose2d`` on inputs one voxel thick along an axis
    where its kernel, stride and padding are 1, 1 and 0 (the U-Net's up-convolution on slices stored as 3D files).

    Shapes: as ``nn.ConvTranspose3d``, input ``(N, C_in, X, Y, Z)``, output ``(N, C_out, X', Y', Z')``.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript compiles only the plain path (this branch is dropped)
            axis = None if torch.jit.is_tracing() or output_size is not None else self._flat(x)
            if axis is not None:
                return conv3d_as_2d(x, self.weight, self.bias, self.padding, axis, self.stride, transposed=True)
        # nn.ConvTranspose3d.forward's body (TorchScript compiles no super() call)
        output_padding = self._output_padding(
            x, output_size, list(self.stride), list(self.padding), list(self.kernel_size), 3, list(self.dilation)
        )
        return F.conv_transpose3d(
            x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )

    @torch.jit.unused
    def _flat(self, x: torch.Tensor) -> int | None:
        plain = self.groups == 1 and self.dilation == (1, 1, 1) and self.output_padding == (0, 0, 0)
        return flat_axis(x, self.kernel_size, self.padding, self.stride) if plain else None
