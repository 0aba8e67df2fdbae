"""Reading images with their geometry and writing segmentations that lie exactly on them."""

from __future__ import annotations

from monai_unet.io.errors import ImageInputError

__all__ = ["ImageInputError"]
