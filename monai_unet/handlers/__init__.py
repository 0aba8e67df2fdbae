"""Ignite handlers the bundles attach: atomic full-state checkpoints with resume, validation history, summaries,
the wall-clock budget with its time-driven learning rate, and the connected-component comparison."""

from __future__ import annotations

from monai_unet.handlers.budget import TimeBudget
from monai_unet.handlers.checkpoint import TrainingCheckpoint
from monai_unet.handlers.components import ComponentChoice
from monai_unet.handlers.history import ValidationHistory
from monai_unet.handlers.summary import MetricsSummary

__all__ = ["ComponentChoice", "MetricsSummary", "TimeBudget", "TrainingCheckpoint", "ValidationHistory"]
