"""A JSON summary of an evaluation: every metric's aggregate value, written atomically when the run completes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from monai_unet.io.atomic import atomic_path

__all__ = ["MetricsSummary"]


class MetricsSummary:
    """Write ``{"metrics": {name: value}, "cases": n, "best_epoch": e}`` to ``path`` when the evaluator completes.

    The per-case values go to CSV through MONAI's ``MetricsSaver``; this is the one file a results table is read
    from. Non-finite values (a distance on an empty prediction) are written as ``null``.

    Args:
        path: the JSON file.
        extra: constant fields to include (e.g. the checkpoint evaluated).
    """

    def __init__(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.extra = dict(extra or {})

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        metrics = {
            name: (float(value) if math.isfinite(float(value)) else None)
            for name, value in engine.state.metrics.items()
            if isinstance(value, int | float)
        }
        loader = engine.state.dataloader
        cases = len(loader.dataset) if loader is not None and hasattr(loader, "dataset") else None
        summary = {"metrics": metrics, "cases": cases, **self.extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
