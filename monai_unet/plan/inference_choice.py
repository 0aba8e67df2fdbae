"""The planner's inference settings: tiles of the training patch with Gaussian blending, and whether test-time
mirroring is checked after training.

nnU-Net mirrors every prediction along all axes. On a CPU that multiplies inference by ``2 ** axes``, and it does not
pay everywhere (``benchmarks/RESULTS.md``: CVC-ClinicDB gained, ISBI's Rand error and pixel error moved apart, BRATS
fold 2 lost Dice), so training decides (:class:`monai_unet.handlers.MirroringCheck`): the planner only chooses the
axes to check, by what the check costs against the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "INFERENCE_OVERLAP",
    "MIRROR_CHECK_SHARE",
    "VALIDATION_OVERLAP",
    "choose_inference",
    "mirror_check_axes",
    "tile_count",
    "validations_after_training",
]

INFERENCE_OVERLAP = 0.5
VALIDATION_OVERLAP = 0.25
#: The mirroring check (``2 ** axes`` validations) must fit in this share of the training budget.
MIRROR_CHECK_SHARE = 0.10


def tile_count(shape: Sequence[float], patch: Sequence[int], overlap: float) -> int:
    """Tiles a sliding window of ``patch`` voxels with fractional ``overlap`` places over a case of ``shape`` voxels."""
    count = 1
    for size, tile in zip(shape, patch, strict=True):
        step = max(1, int(tile * (1 - overlap)))
        count *= 1 if size <= tile else math.ceil((size - tile) / step) + 1
    return count


def mirror_check_axes(dims: int, anisotropic_axis: int | None, validation_s: float, budget_s: float) -> list[int]:
    """Axes whose test-time mirroring is checked after training: every axis when the ``2 ** axes`` validations
    (``validation_s`` seconds each) fit in :data:`MIRROR_CHECK_SHARE` of ``budget_s``, else the in-plane axes of
    anisotropic 3D data, else none."""
    allowed = MIRROR_CHECK_SHARE * budget_s
    candidates = [list(range(dims))]
    if anisotropic_axis is not None:
        candidates.append([a for a in range(dims) if a != anisotropic_axis])
    return next((axes for axes in candidates if 2 ** len(axes) * validation_s <= allowed), [])


def validations_after_training(mirror_axes: Sequence[int]) -> int:
    """Validations run once training stops (``TimeBudget``'s ``reserve_validations``): the final one, plus the
    mirroring check's ``2 ** axes`` when it checks any axis."""
    return 1 + (2 ** len(mirror_axes) if mirror_axes else 0)


def choose_inference(
    dims: int, patch: Sequence[int], anisotropic_axis: int | None, validation_s: float, budget_s: float
) -> tuple[dict[str, Any], str]:
    """The plan's ``inference`` settings for a ``patch`` (voxels) and the reason, given the estimated seconds of one
    validation and the budget's seconds."""
    axes = mirror_check_axes(dims, anisotropic_axis, validation_s, budget_s)
    inference = {
        "roi_size": list(patch),
        "overlap": INFERENCE_OVERLAP,
        "validation_overlap": VALIDATION_OVERLAP,
        "mode": "gaussian",
        "sw_batch_size": 2 if dims == 3 else 4,
        "mirror_check_axes": axes,
    }
    reason = (
        f"tiles of the training patch, overlap {INFERENCE_OVERLAP} with Gaussian blending; validation during training "
        f"uses overlap {VALIDATION_OVERLAP} to keep its cost inside the budget. "
        + (
            f"Test-time mirroring along axes {axes} is checked on the best model after training and turned on when "
            f"it gains (plans.json: postprocessing.tta_axes); it multiplies inference by {2 ** len(axes)}."
            if axes
            else f"Test-time mirroring is off: checking it would take more than {MIRROR_CHECK_SHARE:.0%} of the "
            "budget (set tta_axes to turn it on)."
        )
    )
    return inference, reason
