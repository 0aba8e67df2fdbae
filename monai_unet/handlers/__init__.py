"""Ignite handlers the bundles attach: atomic full-state checkpoints with resume, validation history, summaries."""

from __future__ import annotations

from monai_unet.handlers.checkpoint import TrainingCheckpoint
from monai_unet.handlers.history import ValidationHistory
from monai_unet.handlers.summary import MetricsSummary

__all__ = ["MetricsSummary", "TrainingCheckpoint", "ValidationHistory"]
