"""Ignite handlers the bundles attach: atomic full-state checkpoints with resume, validation history."""

from __future__ import annotations

from monai_unet.handlers.checkpoint import TrainingCheckpoint
from monai_unet.handlers.history import ValidationHistory

__all__ = ["TrainingCheckpoint", "ValidationHistory"]
