"""The optimiser the plan trains with: Adam at nnU-Net's rate for Adam, a learning rate that decays with elapsed
time (:class:`~monai_unet.handlers.TimeBudget`, power 0.9), and optionally a moving average of the weights that the
validations score (:class:`~monai_unet.handlers.WeightAverage`)."""

from __future__ import annotations

from typing import Any

__all__ = ["AVERAGE_HALF_LIFE", "LEARNING_RATE", "choose_optimiser"]

LEARNING_RATE = 1e-3
#: Half-life of the weights' moving average as a share of the planned steps (at least 10 steps); None: validations
#: score the weights as trained.
AVERAGE_HALF_LIFE: float | None = None


def choose_optimiser(iterations: int) -> dict[str, Any]:
    """The ``optimiser`` entry of a plan expected to train ``iterations`` steps."""
    half_life = max(10, round(AVERAGE_HALF_LIFE * iterations)) if AVERAGE_HALF_LIFE else None
    return {
        "name": "Adam",
        "lr": LEARNING_RATE,
        "weight_decay": 1e-5,
        "poly_power": 0.9,
        "average_half_life": half_life,
    }
