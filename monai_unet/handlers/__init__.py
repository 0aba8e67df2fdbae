"""Ignite handlers the bundles attach: atomic full-state checkpoints with resume, validation history, summaries,
the wall-clock budget with its time-driven learning rate, the connected-component comparison, the test-time
mirroring check, the moving average of the weights that validations score, and run folders."""

from __future__ import annotations

from monai_unet.handlers.averaging import WeightAverage
from monai_unet.handlers.budget import TimeBudget
from monai_unet.handlers.checkpoint import CheckpointError, TrainingCheckpoint
from monai_unet.handlers.components import ComponentChoice
from monai_unet.handlers.history import ValidationHistory
from monai_unet.handlers.mirroring import MirroringCheck
from monai_unet.handlers.random_states import RandomStates
from monai_unet.handlers.runs import latest_run_dir, new_run_dir
from monai_unet.handlers.summary import MetricsSummary

__all__ = [
    "CheckpointError",
    "ComponentChoice",
    "MetricsSummary",
    "MirroringCheck",
    "RandomStates",
    "TimeBudget",
    "TrainingCheckpoint",
    "ValidationHistory",
    "WeightAverage",
    "latest_run_dir",
    "new_run_dir",
]
