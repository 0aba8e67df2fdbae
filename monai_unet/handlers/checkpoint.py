"""Full-state training checkpoints written atomically, and resuming a killed run from the last one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_unet.errors import InputError
from monai_unet.io.atomic import atomic_path, sweep_temporaries

__all__ = ["CheckpointError", "TrainingCheckpoint"]

logger = logging.getLogger(__name__)


class CheckpointError(InputError):
    """A checkpoint that cannot be resumed from (damaged, or written by another configuration); the message names
    the file and what to do. The command line reports it as bad input (exit 2), not as an internal error."""


class TrainingCheckpoint:
    """Save everything a run needs to continue, every ``save_interval`` epochs; optionally resume from it.

    MONAI's ``CheckpointSaver`` writes in place (a crash mid-write leaves a broken file) and model-zoo bundles keep
    only the weights. This handler writes one file, ``<save_dir>/<filename>``, through a temporary name and a
    rename, holding the state dicts of every object in ``save_dict`` (network, optimizer, LR scheduler, the trainer
    engine — epoch and iteration — and any other object with ``state_dict``, such as a :class:`ValidationHistory`).

    With ``resume=True`` the file is loaded when the trainer starts (``map_location``, ``weights_only=True``), so
    the run continues at the saved epoch with the saved optimizer, schedule and metric history, up to the
    configured ``max_epochs``; with a :class:`monai_unet.handlers.RandomStates` in ``save_dict`` it also draws the
    same random numbers, repeating the interrupted epoch exactly. A missing file starts a fresh run with a log line.
    Resuming first removes the temporaries a killed run left in ``save_dir`` (``.<name>.*.tmp`` folders).

    Objects in ``save_dict`` with a ``flush()`` method and a ``deferred`` flag (:class:`ValidationHistory`: the best
    ``model.pt`` and the CSV) write their files right after the checkpoint is renamed into place, never before, so
    the files never run ahead of the checkpoint they belong to. A checkpoint is also written when training
    completes, after every other handler of that event (the time budget's final validation).

    Args:
        save_dir: folder of the checkpoint file.
        save_dict: name → object with ``state_dict()`` / ``load_state_dict()``; include the trainer as ``"trainer"``.
        save_interval: epochs between checkpoints (the last epoch is always saved).
        resume: load the checkpoint at start when it exists.
        filename: file name inside ``save_dir``.
        map_location: device the tensors are loaded to (``"cpu"`` works on machines without a GPU).
        is_saver: whether this process writes checkpoints; in multi-process (DDP) training every process resumes
            but only rank 0 saves, e.g. ``"$torch.distributed.get_rank() == 0"`` in a config.
    """

    def __init__(
        self,
        save_dir: str | Path,
        save_dict: Mapping[str, Any],
        save_interval: int = 1,
        resume: bool = False,
        filename: str = "checkpoint_last.pt",
        map_location: str | torch.device = "cpu",
        is_saver: bool = True,
    ) -> None:
        if save_interval < 1:
            raise ValueError(f"save_interval must be at least 1 epoch, got {save_interval}.")
        if not save_dict:
            raise ValueError("save_dict must name at least one object to checkpoint.")
        self.path = Path(save_dir) / filename
        self.save_dict = dict(save_dict)
        self.save_interval = save_interval
        self.resume = resume
        self.map_location = map_location
        self.is_saver = is_saver

    def attach(self, engine: Engine) -> None:
        """Attach to the trainer: load at ``STARTED`` (when resuming), save at ``EPOCH_COMPLETED`` and at
        ``COMPLETED``."""
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load)
        if self.is_saver:
            for obj in self._flushed():
                obj.deferred = True
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._maybe_save)
            # registered when the run starts, so that it follows every COMPLETED handler attached before it
            engine.add_event_handler(Events.STARTED, self._save_when_completed)

    def _flushed(self) -> list[Any]:
        return [obj for obj in self.save_dict.values() if callable(getattr(obj, "flush", None))]

    def _save_when_completed(self, engine: Engine) -> None:
        if not engine.has_event_handler(self.save, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self.save)

    def _maybe_save(self, engine: Engine) -> None:
        if engine.state.epoch % self.save_interval == 0 or engine.state.epoch == engine.state.max_epochs:
            self.save()

    def save(self, engine: Engine | None = None) -> Path:
        """Write the checkpoint atomically; returns its path."""
        state = {name: obj.state_dict() for name, obj in self.save_dict.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)
        logger.info("saved training checkpoint %s", self.path)
        for obj in self._flushed():
            obj.flush()
        return self.path

    def load(self, engine: Engine) -> None:
        """Restore every object from the checkpoint, keeping the trainer's configured ``max_epochs``."""
        for left in sweep_temporaries(self.path.parent):
            logger.info("resume: removed %s, left behind by the interrupted run", left)
        if not self.path.is_file():
            logger.info("resume: no checkpoint at %s, starting a fresh run", self.path)
            return
        try:
            state = torch.load(self.path, map_location=self.map_location, weights_only=True)
        except Exception as error:  # a corrupt or foreign file: say which and what to do
            raise CheckpointError(
                f"{self.path}: cannot load the training checkpoint ({' '.join(str(error).split())}). Delete it "
                "to start afresh, or train without resume."
            ) from error
        missing = sorted(set(self.save_dict) - set(state))
        if missing:
            raise CheckpointError(
                f"{self.path}: checkpoint lacks {missing}; it was written by a different configuration."
            )
        max_epochs = engine.state.max_epochs
        for name, obj in self.save_dict.items():
            try:
                obj.load_state_dict(state[name])
            except (KeyError, RuntimeError, ValueError) as error:
                raise CheckpointError(
                    f"{self.path}: its {name!r} does not fit this run ({' '.join(str(error).split())[:300]}); it "
                    "was written by a different configuration."
                ) from error
        if max_epochs is not None:
            if engine.state.epoch > max_epochs:
                raise CheckpointError(
                    f"{self.path}: the checkpoint is at epoch {engine.state.epoch}, beyond max_epochs={max_epochs}. "
                    "Raise max_epochs to train further."
                )
            engine.state.max_epochs = max_epochs
        logger.info("resumed from %s at epoch %d (iteration %d)", self.path, engine.state.epoch, engine.state.iteration)
