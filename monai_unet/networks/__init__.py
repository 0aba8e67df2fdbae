"""Networks: the U-Net and its size arithmetic."""

from __future__ import annotations

from monai_unet.networks.size_arithmetic import UNetGeometry
from monai_unet.networks.unet import UNet

__all__ = ["UNet", "UNetGeometry"]
