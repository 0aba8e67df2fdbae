"""Networks: the U-Net, its size arithmetic (and the protocol through which tiling asks a network for it), and the
CPU-training-friendly 3D convolution and channels-last instance norm it uses."""

from __future__ import annotations

from monai_unet.networks.folded_conv import FoldedConv3d
from monai_unet.networks.instance_norm import InstanceNorm2d, InstanceNorm3d, channels_last_format
from monai_unet.networks.size_arithmetic import SizedNetwork, UNetGeometry
from monai_unet.networks.unet import UNet

__all__ = [
    "FoldedConv3d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "SizedNetwork",
    "UNet",
    "UNetGeometry",
    "channels_last_format",
]
