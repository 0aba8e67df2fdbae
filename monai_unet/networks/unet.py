"""The U-Net of Ronneberger et al. (2015) and its 3D form (Çiçek et al. 2016), one class for 2D and 3D."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from monai.networks.layers.utils import get_act_layer
from torch import nn

from monai_unet.networks.size_arithmetic import UNetGeometry

__all__ = ["UNet"]

_NORMS = {None: None, "batch": Norm.BATCH, "instance": Norm.INSTANCE}


def _center_crop(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Crop the spatial axes of ``x`` (N, C, *spatial) symmetrically to ``size`` (the paper's "copy and crop")."""
    for axis in range(len(size)):
        excess = x.shape[axis + 2] - size[axis]
        if excess != 0:
            x = x.narrow(axis + 2, excess // 2, size[axis])
    return x


class _DoubleConv(nn.Sequential):
    """Two 3×3(×3) convolutions, each followed by the optional norm and the activation, then optional dropout."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        padding: int,
        norm: str | None,
        act: str | tuple,
        dropout: float,
    ) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers.append(
                Conv[Conv.CONV, spatial_dims](c_in, out_channels, kernel_size=3, padding=padding, bias=norm is None)
            )
            if norm is not None:
                norm_type = _NORMS[norm]
                kwargs = {"affine": True} if norm == "instance" else {}
                layers.append(Norm[norm_type, spatial_dims](out_channels, **kwargs))
            layers.append(get_act_layer(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class _UpStage(nn.Module):
    """One level of the expansive path: upsample, crop-and-concatenate the encoder map, two convolutions."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        padding: str,
        upsample: str,
        norm: str | None,
        act: str | tuple,
    ) -> None:
        super().__init__()
        if upsample == "deconv":
            self.up: nn.Module = Conv[Conv.CONVTRANS, spatial_dims](in_channels, out_channels, kernel_size=2, stride=2)
        else:
            # The 1×1 convolution and linear interpolation commute (interpolation weights sum to 1), so the channel
            # reduction runs first, at the coarse resolution: same result, 4× (2D) or 8× (3D) cheaper.
            mode = "bilinear" if spatial_dims == 2 else "trilinear"
            self.up = nn.Sequential(
                Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1),
                nn.Upsample(scale_factor=2, mode=mode, align_corners=False),
            )
        # Valid mode drops the outermost interpolated voxel per side: it is extrapolated, not computed.
        self.border_crop = 1 if (padding == "valid" and upsample == "interp") else 0
        self.conv = _DoubleConv(
            spatial_dims, 2 * out_channels, out_channels, 1 if padding == "same" else 0, norm, act, 0.0
        )

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

    Shapes:
        input ``(N, in_channels, *spatial)`` with each spatial size valid for the network (see
        :meth:`valid_input_shape`); output ``(N, out_channels, *output_shape(spatial))``.

    Weights are initialised He-normal, std = sqrt(2 / N) with N the number of incoming connections of a unit
    (kernel volume × input channels; for the 2×2 stride-2 up-convolution, the input channels), biases to zero.
    """

    __jit_unused_properties__ = ["margin"]  # noqa: RUF012 (TorchScript reads this class attribute)

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
        self.geometry = UNetGeometry(len(features), padding, upsample)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.padding = padding
        self.upsample = upsample

        depth = len(features)
        conv_pad = 1 if padding == "same" else 0
        self.down = nn.ModuleList()
        for level, width in enumerate(features):
            c_in = in_channels if level == 0 else features[level - 1]
            level_dropout = dropout if level >= depth - 2 else 0.0
            self.down.append(_DoubleConv(spatial_dims, c_in, width, conv_pad, norm, act, level_dropout))
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2)
        self.decoder = nn.ModuleList(
            _UpStage(spatial_dims, features[level + 1], features[level], padding, upsample, norm, act)
            for level in reversed(range(depth - 1))
        )
        self.head = Conv[Conv.CONV, spatial_dims](features[0], out_channels, kernel_size=1)
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
        for axis, size in enumerate(spatial):
            size_out = self.geometry.output_size(size)
            if size_out is None:
                raise ValueError(self.geometry.describe_misfit(size, axis))
            out.append(size_out)
        return (shape[0], self.out_channels, *out) if full else tuple(out)

    def valid_input_shape(self, min_shape: Sequence[int] | int) -> tuple[int, ...]:
        """The smallest spatial input shape at least ``min_shape`` (voxels) for which every level has integral size.

        Args:
            min_shape: a spatial shape, or one int for every axis.
        """
        if isinstance(min_shape, int):
            min_shape = (min_shape,) * self.spatial_dims
        if len(min_shape) != self.spatial_dims:
            raise ValueError(f"min_shape must have {self.spatial_dims} entries, got {tuple(min_shape)}.")
        return tuple(self.geometry.valid_size_at_least(int(s)) for s in min_shape)

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
        """Logits ``(N, out_channels, *output_shape(spatial))`` for ``x`` of shape ``(N, in_channels, *spatial)``."""
        if not torch.jit.is_scripting():
            self._check_input(x)
        skips: list[torch.Tensor] = []
        for level, block in enumerate(self.down):
            if level > 0:
                skips.append(x)
                x = self.pool(x)
            x = block(x)
        for level, stage in enumerate(self.decoder):
            x = stage(x, skips[len(skips) - 1 - level])
        return self.head(x)
