"""Validation history: every validation's metrics, the best epoch, and the best network saved atomically."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_unet.io.atomic import atomic_path

__all__ = ["ValidationHistory"]

logger = logging.getLogger(__name__)


class ValidationHistory:
    """Record the evaluator's metrics after each validation and keep the best network.

    Attach to the evaluator. After every validation run it appends ``{"epoch": e, **metrics}`` to ``history``,
    rewrites ``csv_path`` (atomically) and, when ``key_metric`` improved, saves the network's weights to
    ``best_path`` (atomically), the run's own folder. Its ``state_dict`` goes into the training checkpoint, so a
    resumed run keeps the metric history and does not overwrite a better earlier model.

    Promotion: the weights are also written to ``promote_path`` (a bundle's ``models/model.pt``, which evaluation
    and inference load) when ``promote`` is ``True``, or, with ``"if-missing"``, when that file did not exist as the
    run started (a freshly planned bundle gets its first weights; shipped weights and an earlier run's model stay).
    The decision is part of the state, so a resumed run keeps it.

    Under a training checkpoint (:class:`monai_unet.handlers.TrainingCheckpoint` with this object in its
    ``save_dict`` sets ``deferred``), the files are written only after the checkpoint they belong to (``flush``):
    a run killed in between leaves ``best_path``, the promoted model and the CSV as the last checkpoint knows them.
    Best weights not yet written travel in that checkpoint and are written when the run resumes.

    Args:
        network: the network whose weights are saved when the key metric improves (unwrapped from DDP if needed).
        key_metric: name in ``evaluator.state.metrics`` that decides "best".
        best_path: file for the best weights (a plain ``state_dict``, loadable with ``weights_only=True``).
        csv_path: optional CSV of the history (one row per validation).
        higher_is_better: ``False`` for errors and distances.
        promote_path: where promoted weights go; None: nowhere.
        promote: ``True``, ``False`` or ``"if-missing"``.
        is_saver: whether this process writes the files; in multi-process (DDP) training every process keeps the
            history (the same metrics, since the replicas are equal) and rank 0 alone writes.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        key_metric: str,
        best_path: str | Path,
        csv_path: str | Path | None = None,
        higher_is_better: bool = True,
        promote_path: str | Path | None = None,
        promote: bool | str = "if-missing",
        is_saver: bool = True,
    ) -> None:
        # the stock runner passes ``--promote true`` as the string "true"
        promote = {"true": True, "false": False}.get(promote.lower(), promote) if isinstance(promote, str) else promote
        if promote not in (True, False, "if-missing"):
            raise ValueError(f"promote must be true, false or 'if-missing', got {promote!r}.")
        self.network = network
        self.promote_path = Path(promote_path) if promote_path is not None else None
        self.promoting = self.promote_path is not None and (
            promote is True or (promote == "if-missing" and not self.promote_path.exists())
        )
        self.key_metric = key_metric
        self.best_path = Path(best_path)
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.higher_is_better = higher_is_better
        self.is_saver = is_saver
        self.history: list[dict[str, float]] = []
        self.best_metric = -math.inf if higher_is_better else math.inf
        self.best_epoch = -1
        self.deferred = False
        self._pending: dict[str, torch.Tensor] | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _improved(self, value: float) -> bool:
        return value > self.best_metric if self.higher_is_better else value < self.best_metric

    def __call__(self, engine: Engine) -> None:
        metrics = engine.state.metrics
        if self.key_metric not in metrics:
            raise KeyError(f"key metric {self.key_metric!r} not among the evaluator's metrics {sorted(metrics)}.")
        epoch = int(engine.state.epoch)
        row = {"epoch": epoch, **{k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}}
        self.history.append(row)
        value = row[self.key_metric]
        if self._improved(value):
            self.best_metric, self.best_epoch = value, epoch
            network = getattr(self.network, "module", self.network)
            self._pending = {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}
            logger.info("epoch %d: new best %s = %.4f", epoch, self.key_metric, value)
        if not self.deferred:
            self.flush()

    def flush(self) -> None:
        """Write the files: the best weights not yet written (and their promotion), then the CSV."""
        if not self.is_saver:
            self._pending = None
            return
        if self._pending is not None:
            targets = [self.best_path] + ([self.promote_path] if self.promoting else [])
            for target in targets:
                self._save(target, self._pending)
            logger.info("saved the best model (epoch %d) to %s", self.best_epoch, targets)
            self._pending = None
        if self.csv_path is not None and self.history:
            self._write_csv()

    @staticmethod
    def _save(target: Path, state: dict[str, torch.Tensor]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            torch.save(state, tmp)

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self.history for key in row))
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.csv_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "promoting": self.promoting,
            **({"unwritten_best": self._pending} if self._pending is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [dict(row) for row in state["history"]]
        self.best_metric = float(state["best_metric"])
        self.best_epoch = int(state["best_epoch"])
        # A run that promoted keeps promoting; promote=true on resume promotes the best model saved so far.
        self.promoting = self.promoting or (bool(state.get("promoting")) and self.promote_path is not None)
        # the files as this checkpoint knows them: best weights it carried unwritten, the CSV of its history
        self._pending = state.get("unwritten_best")
        if self.is_saver and self._pending is None and self.promoting and self.best_path.is_file():
            self._save(self.promote_path, torch.load(self.best_path, map_location="cpu", weights_only=True))
        self.flush()
