"""What validating costs a run, and how much of it the budget affords.

Validations fill about :data:`VALIDATION_SHARE` of the budget (at most :data:`MAX_VALIDATIONS`), and the final one
(plus the mirroring check's) is reserved at the end (:class:`~monai_unet.handlers.TimeBudget`). When one pass over
every validation case would take more than half that share, as with many large CT volumes on two CPU cores, fewer
than two validations would fit and the final one alone could eat a large part of the budget; training then validates
on an evenly spaced subset of the cases whose pass fits (nnU-Net, too, only estimates its validation Dice during
training), and ``monai-unet evaluate`` scores every validation case afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_unet.handlers.budget import RESERVE_FACTOR
from monai_unet.plan.inference_choice import mirror_check_axes, validations_after_training

__all__ = ["MAX_VALIDATIONS", "VALIDATION_SHARE", "in_training_cases", "validation_outcome"]

VALIDATION_SHARE = 0.10
MAX_VALIDATIONS = 10


def in_training_cases(case_seconds: Sequence[float], usable_s: float) -> list[int]:
    """Indices of the validation cases (``case_seconds``: one pass over each) validated during training: all of them
    when their pass takes at most half of :data:`VALIDATION_SHARE` of ``usable_s``, else the evenly spaced subset (in
    the given order, at least one case) that does."""
    count = len(case_seconds)
    allowed = VALIDATION_SHARE / 2 * usable_s
    total = float(sum(case_seconds))
    if count <= 1 or total <= allowed:
        return list(range(count))
    keep = max(1, int(count * allowed / total))
    return [count // 2] if keep == 1 else sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def validation_outcome(
    case_seconds: Sequence[float],
    usable_s: float,
    budget_s: float,
    train_step_s: float,
    dims: int,
    anisotropic_axis: int | None,
) -> dict[str, Any]:
    """Seconds per validation, validations, training seconds and iterations of a configuration whose validation
    cases take ``case_seconds`` each and whose step takes ``train_step_s``, in ``usable_s`` of a ``budget_s`` run;
    ``validation_cases``: the indices :func:`in_training_cases` keeps."""
    kept = in_training_cases(case_seconds, usable_s)
    validation_s = float(sum(case_seconds[i] for i in kept))
    n_val = int(np.clip(VALIDATION_SHARE * usable_s / max(validation_s, 1e-6), 1, MAX_VALIDATIONS))
    after = validations_after_training(mirror_check_axes(dims, anisotropic_axis, validation_s, budget_s))
    reserve_s = RESERVE_FACTOR * after * validation_s
    train_s = max(usable_s - (n_val - 1) * validation_s - reserve_s, 0.1 * usable_s)
    return {
        "validation_s": validation_s,
        "validations": n_val,
        "iterations": train_s / train_step_s,
        "train_s": train_s,
        "validation_cases": kept,
    }
