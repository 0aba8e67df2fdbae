"""The ladder of configurations the planner's calibration walks down, and the network each one trains.

From the most to the least expensive: the median case as patch at base width 32, the same at width 16, then the patch
by 15 % per step down to the smallest allowed; the batch stays (:func:`ladder`). Each rung's network is the planned
same-padding U-Net (:func:`network_kwargs`, keyword arguments of :class:`monai_unet.networks.UNet`), optionally
deeply supervised (:func:`deep_supervision_heads`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FEATURE_CAP", "Candidate", "deep_supervision_heads", "ladder", "network_kwargs"]

#: Widths double per level from the base width up to this many feature maps.
FEATURE_CAP = 256


@dataclass(frozen=True)
class Candidate:
    """One rung: the patch (voxels, before rounding to the pooling factors), the batch and the base width."""

    patch: tuple[float, ...]
    batch: int
    base: int


def ladder(patch: np.ndarray, batch: int, minimum: np.ndarray) -> Iterator[Candidate]:
    """Candidates from the most to the least expensive: narrower network, then smaller patch; the batch stays.

    The batch is never traded for width: on CVC-ClinicDB (2D) the earlier ladder's batch-4, width-32 choice saw
    about 5 frames a second and lost to a stock network seeing 16 (``benchmarks/RESULTS.md``).
    """
    yield Candidate(tuple(patch), batch, 32)
    yield Candidate(tuple(patch), batch, 16)
    current = patch.copy()
    while np.any(current > minimum):
        current = np.maximum(current * 0.85, minimum)
        yield Candidate(tuple(current), batch, 16)


def deep_supervision_heads(depth: int) -> int:
    """Extra output heads of a deeply supervised U-Net of ``depth`` levels, as nnU-Net places them: a loss at every
    resolution but the two lowest (heads at levels 1 .. depth - 3)."""
    return max(depth - 3, 0)


def network_kwargs(
    dims: int,
    channels: int,
    classes: int,
    base: int,
    pools: list,
    kernels: list,
    deep_supervision: bool = False,
    norm: str = "instance",
) -> dict[str, Any]:
    """The planned U-Net's keyword arguments: ``norm`` (instance by default, as nnU-Net), same padding, widths from
    ``base`` doubling per level (capped at :data:`FEATURE_CAP`), ``pools`` and ``kernels`` per level and axis, and
    with ``deep_supervision`` its heads (off by default: it lost on BRATS and was level on ACDC,
    ``benchmarks/RESULTS.md``)."""
    features = [min(base * 2**level, FEATURE_CAP) for level in range(len(pools) + 1)]
    return {
        "spatial_dims": dims,
        "in_channels": channels,
        "out_channels": classes,
        "features": features,
        "padding": "same",
        "upsample": "deconv",
        "norm": norm,
        "dropout": 0.0,
        "pools": pools,
        "kernels": kernels,
        "deep_supervision": deep_supervision_heads(len(features)) if deep_supervision else 0,
    }
