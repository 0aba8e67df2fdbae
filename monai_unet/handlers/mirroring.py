"""Whether test-time mirroring helps: the best model validated once more with mirroring, after training.

nnU-Net mirrors every prediction along all axes. On a CPU that multiplies inference by ``2 ** axes``, and on some
tasks it does not pay (ISBI membranes: the Rand error and the pixel error moved in opposite directions). This check
loads the run's best weights, runs a validation whose tiles are averaged over every flip of ``axes``, and reports
its key metric and its guard metrics, to be compared with the same model's plain validation (the history's best)
by :func:`monai_unet.plan.record_training`, which turns mirroring on for inference only when the key metric gained
and no guard (a thin class's Rand error, lower is better) rose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine

__all__ = ["MirroringCheck"]

logger = logging.getLogger(__name__)


class MirroringCheck:
    """The best model's validation metric with test-time mirroring.

    Args:
        evaluator: a MONAI ``SupervisedEvaluator`` like the training's validator (same data, post-processing and
            metrics, no handlers that save or record), whose inferer mirrors ``axes``.
        network: the network the evaluator runs (a ``DistributedDataParallel`` wrapper is unwrapped).
        best_path: the run's best weights (a ``state_dict`` file written by ``ValidationHistory``).
        axes: spatial axes (0-based) the evaluator's inferer mirrors; empty: no check.
        key_metric: the evaluator's metric to report (the one that selected the best model).
        guard_metrics: evaluator metrics (lower is better) reported beside it, which mirroring must not raise.
    """

    def __init__(
        self,
        evaluator: Engine,
        network: torch.nn.Module,
        best_path: str | Path,
        axes: Sequence[int],
        key_metric: str,
        guard_metrics: Sequence[str] = (),
    ) -> None:
        self.evaluator = evaluator
        self.network = network
        self.best_path = Path(best_path)
        self.axes = [int(a) for a in axes]
        self.key_metric = key_metric
        self.guard_metrics = list(guard_metrics)

    def run(self) -> dict[str, Any] | None:
        """Validate the best weights with mirroring.

        Returns:
            ``{"axes", "metric", "guards", "seconds"}`` (``guards``: each guard metric's value), or ``None`` when
            there are no axes to check or no best weights (no validation ran).
        """
        if not self.axes or not self.best_path.is_file():
            return None
        network = getattr(self.network, "module", self.network)
        network.load_state_dict(torch.load(self.best_path, map_location="cpu", weights_only=True))
        start = time.monotonic()
        self.evaluator.run()
        metrics = self.evaluator.state.metrics
        missing = [name for name in (self.key_metric, *self.guard_metrics) if name not in metrics]
        if missing:
            raise KeyError(f"metrics {missing} not among the evaluator's metrics {sorted(metrics)}.")
        result = {
            "axes": self.axes,
            "metric": float(metrics[self.key_metric]),
            "guards": {name: float(metrics[name]) for name in self.guard_metrics},
            "seconds": round(time.monotonic() - start, 1),
        }
        logger.info(
            "best model with test-time mirroring of axes %s: %s = %.4f, guards %s",
            self.axes,
            self.key_metric,
            result["metric"],
            result["guards"],
        )
        return result
