"""The U-Net of Ronneberger et al. (2015) and its 3D form (Çiçek et al. 2016), one class for 2D and 3D.

Anisotropic variants (per-step pooling factors and per-level kernel sizes, as nnU-Net plans them for thick-slice
scans) are available in same-padding mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer
from torch import nn

from monai_unet.networks.flat_axis import FlatAwareConvTranspose3d
from monai_unet.networks.folded_conv import FoldedConv3d
from monai_unet.networks.instance_norm import InstanceNorm2d, InstanceNorm3d
from monai_unet.networks.size_arithmetic import UNetGeometry, per_axis_table

__all__ = ["UNet"]

#: the norm classes per ``norm`` name, (2D, 3D)
_NORMS = {None: None, "batch": (nn.BatchNorm2d, nn.BatchNorm3d), "instance": (InstanceNorm2d, InstanceNorm3d)}


def _center_crop(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Crop the spatial axes of ``x`` (N, C, *spatial) symmetrically to ``size`` (the paper's "copy and crop")."""
    for axis in range(len(size)):
        excess = x.shape[axis + 2] - size[axis]
        if excess != 0:
            x = x.narrow(axis + 2, excess // 2, size[axis])
    return x


class _DoubleConv(nn.Sequential):
    """Two convolutions (3×3(×3), or the level's per-axis sizes), each followed by the optional norm and the
    activation, then optional dropout. ``padding`` is per axis, in voxels (0 in valid mode, ``k // 2`` in same)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, ...],
        padding: tuple[int, ...],
        norm: str | None,
        act: str | tuple,
        dropout: float,
    ) -> None:
        layers: list[nn.Module] = []
        # 3D: FoldedConv3d, an nn.Conv3d (same parameters and state-dict keys) whose CPU weight gradient avoids
        # oneDNN's slow, contention-prone 3D path; plain conv3d in evaluation, on CUDA and in TorchScript.
        conv_type = FoldedConv3d if spatial_dims == 3 else Conv[Conv.CONV, spatial_dims]
        for c_in in (in_channels, out_channels):
            layers.append(conv_type(c_in, out_channels, kernel_size=kernel_size, padding=padding, bias=norm is None))
            if norm is not None:
                # instance norm affine, and kept channels-last on a channels-last input (instance_norm.py)
                kwargs = {"affine": True} if norm == "instance" else {}
                layers.append(_NORMS[norm][spatial_dims - 2](out_channels, **kwargs))
            layers.append(get_act_layer(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class _UpStage(nn.Module):
    """One level of the expansive path: upsample, crop-and-concatenate the encoder map, two convolutions.

    ``factors`` are the per-axis pooling factors (1 or 2) of the step this stage undoes; ``kernel_size`` the
    per-axis convolution sizes of its level.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        padding: str,
        upsample: str,
        norm: str | None,
        act: str | tuple,
        factors: tuple[int, ...],
        kernel_size: tuple[int, ...],
    ) -> None:
        super().__init__()
        if upsample == "deconv":
            up_type = FlatAwareConvTranspose3d if spatial_dims == 3 else Conv[Conv.CONVTRANS, spatial_dims]
            self.up: nn.Module = up_type(in_channels, out_channels, kernel_size=factors, stride=factors)
        else:
            # The 1×1 convolution and linear interpolation commute (interpolation weights sum to 1), so the channel
            # reduction runs first, at the coarse resolution: same result, prod(factors)× cheaper (4× 2D, 8× 3D).
            mode = "bilinear" if spatial_dims == 2 else "trilinear"
            scale: float | tuple[float, ...] = (
                float(factors[0]) if len(set(factors)) == 1 else tuple(float(f) for f in factors)
            )
            self.up = nn.Sequential(
                Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1),
                nn.Upsample(scale_factor=scale, mode=mode, align_corners=False),
            )
        # Valid mode drops the outermost interpolated voxel per side: it is extrapolated, not computed.
        self.border_crop = 1 if (padding == "valid" and upsample == "interp") else 0
        conv_pad = tuple(k // 2 for k in kernel_size) if padding == "same" else (0,) * spatial_dims
        self.conv = _DoubleConv(spatial_dims, 2 * out_channels, out_channels, kernel_size, conv_pad, norm, act, 0.0)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.border_crop > 0:
            x = _center_crop(x, [s - 2 * self.border_crop for s in x.shape[2:]])
        skip = _center_crop(skip, list(x.shape[2:]))
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """U-Net for 2D and 3D segmentation (Ronneberger et al. 2015; Çiçek et al. 2016).

    Contracting path: at each level two 3×3(×3) convolutions (each followed by the norm, when set, and the
    activation), then 2×2(×2) max pooling. Expansive path: upsampling to the width of the level below (the paper's
    2×2 up-convolution, or interpolation followed by a 1×1 convolution), concatenation with the encoder map of the
    same level (centre-cropped in valid mode), two convolutions. A final 1×1 convolution gives logits.

    Anisotropic networks (same padding only), the way nnU-Net plans them for thick-slice scans such as cardiac MRI
    at 1.5 × 1.5 × 10 mm: ``pools`` gives each pooling step a factor 1 or 2 per axis (max pooling and the
    up-convolution use kernel = stride = these factors, interpolation scales by them) and ``kernels`` gives each
    level a convolution size 1 or 3 per axis (used by both convolutions of the level, in the encoder and in the
    decoder stage of the same level). An axis pooled at k steps needs sizes that are multiples of 2^k
    (:attr:`divisors`). Defaults reproduce the isotropic network and its state-dict keys exactly.

    With the defaults (the paper's configuration, 2D, one input channel, two classes) a 572×572 input gives a
    388×388 output through 23 convolutional layers and 31,030,658 parameters.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (e.g. 1 for EM, 2 for FLAIR + T1c MRI).
        out_channels: output channels (classes); the output is logits, no softmax.
        features: channels per level, from the top; ``len(features)`` is the depth (at least 2). Each up-sampling
            maps ``features[l + 1]`` channels to ``features[l]`` (halving them for the paper's doubling widths).
        padding: ``"valid"`` (the paper: unpadded convolutions, the output is smaller than the input by
            ``2 * margin`` voxels per axis and is translation-exact, the property overlap-tile inference relies
            on) or ``"same"`` (zero padding, output size equals input size).
        upsample: ``"deconv"`` (the paper's 2×2 up-convolution) or ``"interp"`` (bilinear/trilinear upsampling and
            a 1×1 convolution; in valid mode the interpolated map is cropped by one voxel per side).
        norm: ``None`` (the paper), ``"batch"`` or ``"instance"``; applied after each 3×3 convolution, before the
            activation. Convolutions followed by a norm carry no bias.
        dropout: dropout probability at the end of the contracting path, applied (as in the authors' released
            Caffe model) to the outputs of the two deepest levels; 0 disables it. Inactive in ``eval()`` mode.
        act: activation name or ``(name, kwargs)`` tuple understood by MONAI's ``get_act_layer``.
        pools: per pooling step (``len(features) - 1`` entries, from the top) the factor per spatial axis, 1 or 2,
            e.g. ``[[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]`` for 10 mm slices. ``None``: 2 on every axis at every
            step. Anything else needs ``padding="same"``.
        kernels: per level (``len(features)`` entries, from the top) the convolution size per spatial axis, 1 or 3,
            e.g. ``[[3, 3, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]]``. ``None``: 3 everywhere. Anything else
            needs ``padding="same"`` (zero padding ``k // 2`` voxels per side).
        deep_supervision: extra 1×1 heads on the decoder's outputs at levels 1 .. ``deep_supervision`` (nnU-Net's deep
            supervision, Isensee et al. 2021: a loss at every resolution but the two lowest gives the deep layers a
            short gradient path). In training mode the forward pass then returns a list of logits, full resolution
            first, each next one at the next level's size (for MONAI's ``DeepSupervisionLoss``, which scores it
            against the label resized by nearest neighbour); in ``eval()`` mode, and in TorchScript, only the full
            resolution logits. 0 (default): one output, as in the paper. Same padding only; at most
            ``len(features) - 2``.

    Attributes:
        pool_factors: the resolved ``pools``, a tuple of per-axis int tuples (one per pooling step).
        kernel_sizes: the resolved ``kernels``, a tuple of per-axis int tuples (one per level).
        axis_geometries: one :class:`UNetGeometry` per spatial axis (its number of 2× poolings included).
        geometry: the geometry of the most-pooled axis; all axes share it in valid mode (any size it accepts fits
            every axis).

    Shapes:
        input ``(N, in_channels, *spatial)`` with each spatial size valid for its axis (see
        :meth:`valid_input_shape` and :attr:`divisors`); output ``(N, out_channels, *output_shape(spatial))``.

    In 3D the 3×3×3 (per-level) convolutions are :class:`~monai_unet.networks.folded_conv.FoldedConv3d`, an
    ``nn.Conv3d`` whose weight gradient, when training on the CPU, is computed by 2D convolutions (same results to
    float rounding; set ``fold_weight_grad = False`` on them for the plain backward). On inputs one voxel thick
    along an axis the plan gives kernels and pools of 1 (slices stored as 3D files), the convolutions and
    up-convolutions run as 2D ones (:mod:`~monai_unet.networks.flat_axis`; 2.6× faster per training step).

    Weights are initialised He-normal, std = sqrt(2 / N) with N the number of incoming connections of a unit
    (kernel volume × input channels; for the up-convolution, whose kernel equals its stride, the input channels),
    biases to zero.
    """

    __jit_unused_properties__ = ["margin", "divisors"]  # noqa: RUF012 (TorchScript reads this class attribute)

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        features: Sequence[int] = (64, 128, 256, 512, 1024),
        padding: str = "valid",
        upsample: str = "deconv",
        norm: str | None = None,
        dropout: float = 0.5,
        act: str | tuple = "relu",
        pools: Sequence[Sequence[int]] | None = None,
        kernels: Sequence[Sequence[int]] | None = None,
        deep_supervision: int = 0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        features = tuple(int(f) for f in features)
        if len(features) < 2:
            raise ValueError(f"features needs at least 2 levels (one pooling), got {features}.")
        if min(features) < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"channel counts must be positive: in_channels={in_channels}, out_channels={out_channels}, "
                f"features={features}."
            )
        norm = norm.lower() if isinstance(norm, str) else norm
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of None, 'batch', 'instance', got {norm!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        depth = len(features)
        isotropic = UNetGeometry(depth, padding, upsample)  # checks padding and upsample
        pool_factors = per_axis_table(
            "pools", pools, "one per pooling step: len(features) - 1", depth - 1, spatial_dims, (1, 2)
        )
        kernel_sizes = per_axis_table("kernels", kernels, "one per level: len(features)", depth, spatial_dims, (1, 3))
        custom = [
            name
            for name, table, default in (("pools", pool_factors, 2), ("kernels", kernel_sizes, 3))
            if any(v != default for row in table for v in row)
        ]
        if custom and padding != "same":
            raise ValueError(
                f"{' and '.join(custom)} other than the default (2× pooling and 3-voxel convolutions on every axis) "
                f"need padding='same'; got padding={padding!r}. Valid-mode size arithmetic and translation "
                "exactness assume the isotropic network."
            )
        self.pool_factors = pool_factors
        self.kernel_sizes = kernel_sizes
        self.axis_geometries = tuple(
            UNetGeometry(depth, padding, upsample, poolings=sum(step[axis] == 2 for step in pool_factors))
            for axis in range(spatial_dims)
        )
        self.geometry = (
            isotropic
            if not custom
            else UNetGeometry(depth, padding, upsample, poolings=max(g.poolings for g in self.axis_geometries))
        )
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.padding = padding
        self.upsample = upsample

        self.down = nn.ModuleList()
        for level, width in enumerate(features):
            c_in = in_channels if level == 0 else features[level - 1]
            level_dropout = dropout if level >= depth - 2 else 0.0
            kernel = kernel_sizes[level]
            conv_pad = tuple(k // 2 for k in kernel) if padding == "same" else (0,) * spatial_dims
            self.down.append(_DoubleConv(spatial_dims, c_in, width, kernel, conv_pad, norm, act, level_dropout))
        # One entry per level, applied before its convolutions: nothing at the top, then the max pooling of the step
        # into that level. Parameterless, so the state dict is the same as with a single shared pooling layer.
        self.pools = nn.ModuleList(
            [nn.Identity()]
            + [Pool[Pool.MAX, spatial_dims](kernel_size=factors, stride=factors) for factors in pool_factors]
        )
        self.decoder = nn.ModuleList(
            _UpStage(
                spatial_dims,
                features[level + 1],
                features[level],
                padding,
                upsample,
                norm,
                act,
                pool_factors[level],
                kernel_sizes[level],
            )
            for level in reversed(range(depth - 1))
        )
        self.head = Conv[Conv.CONV, spatial_dims](features[0], out_channels, kernel_size=1)
        if not 0 <= deep_supervision <= max(depth - 2, 0) or (deep_supervision and padding != "same"):
            raise ValueError(
                f"deep_supervision must be 0 or, with padding='same', at most len(features) - 2 = {depth - 2} "
                f"(heads at levels 1 .. deep_supervision); got {deep_supervision} with padding={padding!r}."
            )
        self.deep_supervision = int(deep_supervision)
        self.aux_heads = nn.ModuleList(
            Conv[Conv.CONV, spatial_dims](features[level], out_channels, kernel_size=1)
            for level in range(1, deep_supervision + 1)
        )
        self._init_he_normal()

    def _init_he_normal(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
            elif isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
                fan_in = module.in_channels * math.prod(module.kernel_size) // math.prod(module.stride)
            else:
                continue
            nn.init.normal_(module.weight, mean=0.0, std=math.sqrt(2.0 / fan_in))
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    # ----------------------------------------------------------------------------------------------- size arithmetic
    @property
    def margin(self) -> int:
        """Voxels lost per side along every spatial axis (0 in same mode); 92 for the paper's network."""
        return self.geometry.margin

    @property
    def divisors(self) -> tuple[int, ...]:
        """Per spatial axis, the total down-sampling factor 2^(number of 2× poolings of the axis): in same mode
        the valid sizes of an axis are its multiples (voxels). ``(16, 16, 16)`` for a default depth-5 3D network,
        ``(16, 16, 4)`` with ``pools=[[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]``."""
        return tuple(g.divisor for g in self.axis_geometries)

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Output shape for an input shape.

        Args:
            input_shape: spatial shape ``(H, W[, D])`` in voxels, or a full ``(N, C, H, W[, D])`` shape.

        Returns:
            the output's spatial shape, or ``(N, out_channels, *spatial)`` when a full shape was given.

        Raises:
            ValueError: when a spatial size does not fit, naming the nearest valid sizes below and above.
        """
        shape = tuple(int(s) for s in input_shape)
        full = len(shape) == self.spatial_dims + 2
        if not full and len(shape) != self.spatial_dims:
            raise ValueError(
                f"expected a spatial shape of length {self.spatial_dims} or a full (N, C, ...) shape of length "
                f"{self.spatial_dims + 2}, got {shape}."
            )
        spatial = shape[2:] if full else shape
        out = []
        for axis, (size, geometry) in enumerate(zip(spatial, self.axis_geometries, strict=True)):
            size_out = geometry.output_size(size)
            if size_out is None:
                raise ValueError(geometry.describe_misfit(size, axis))
            out.append(size_out)
        return (shape[0], self.out_channels, *out) if full else tuple(out)

    def valid_input_shape(self, min_shape: Sequence[int] | int) -> tuple[int, ...]:
        """The smallest spatial input shape at least ``min_shape`` (voxels) for which every level has integral size.

        Per axis: an anisotropic network accepts, along an axis pooled fewer times, finer steps (see ``divisors``).

        Args:
            min_shape: a spatial shape, or one int for every axis.
        """
        if isinstance(min_shape, int):
            min_shape = (min_shape,) * self.spatial_dims
        if len(min_shape) != self.spatial_dims:
            raise ValueError(f"min_shape must have {self.spatial_dims} entries, got {tuple(min_shape)}.")
        return tuple(g.valid_size_at_least(int(s)) for g, s in zip(self.axis_geometries, min_shape, strict=True))

    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self.spatial_dims + 2:
            axes = "H, W" if self.spatial_dims == 2 else "H, W, D"
            raise ValueError(f"expected input of shape (N, {self.in_channels}, {axes}), got {tuple(x.shape)}.")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]} (shape {tuple(x.shape)}).")
        self.output_shape(x.shape[2:])

    # ------------------------------------------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, *output_shape(spatial))`` for ``x`` of shape ``(N, in_channels, *spatial)``;
        in training with ``deep_supervision`` heads, the list of them (see the class docstring)."""
        if not torch.jit.is_scripting():
            self._check_input(x)
            if self.training and self.deep_supervision > 0:
                return self._deeply_supervised(x)
        return self.head(self._decode(x, 0)[-1])

    def _decode(self, x: torch.Tensor, keep: int) -> list[torch.Tensor]:
        """The decoder's outputs at levels ``keep`` .. 0, coarsest first (the others are freed as the pass goes)."""
        skips: list[torch.Tensor] = []  # the output of every level; the last one (the bottleneck) is never a skip
        for pool, block in zip(self.pools, self.down):  # noqa: B905 (TorchScript: no strict=; equal lengths)
            x = block(pool(x))
            skips.append(x)
        kept: list[torch.Tensor] = []
        for step, stage in enumerate(self.decoder):
            level = len(skips) - 2 - step
            x = stage(x, skips[level])
            if level <= keep:
                kept.append(x)
        return kept

    @torch.jit.unused
    def _deeply_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The full-resolution logits, then those of levels 1 .. ``deep_supervision`` (each ``(N, out_channels,
        *level_shape)``). Left out of TorchScript, so the scripted network keeps one output."""
        levels = self._decode(x, self.deep_supervision)[::-1]  # level 0 first
        return [self.head(levels[0])] + [head(levels[level]) for level, head in enumerate(self.aux_heads, start=1)]
