"""A wall-clock training budget: the learning rate decays with elapsed time and reaches zero as the budget ends.

A polynomial schedule over a fixed iteration count cut short by ignite's ``TimeLimit`` never finishes its decay; an
iteration count guessed in advance either ends early or overruns. This handler drives the schedule by the clock:
at every iteration the learning rate is ``lr0 * (1 - t / T) ** power``, with ``t`` the seconds since training
started (validations included) and ``T`` the budget less the time the final validation needs (the last one's
measured duration, or the plan's estimate before any has run), times ``reserve_validations`` when more than that
one validation follows training (the test-time mirroring check, :class:`monai_unet.handlers.MirroringCheck`).
When ``t`` reaches ``T`` the trainer is stopped, one last validation runs (unless the last iteration was just
validated: a validation that ends past ``T`` stops training at once, rather than after one more iteration that would
need a validation of its own), and the run ends within the budget.

Several processes training one network (``torchrun``, DDP) follow rank 0's clock: each iteration they take its
elapsed seconds and training horizon, so every process sets the same learning rate (DDP averages gradients, so
different rates would make the replicas drift apart) and stops at the same iteration (a process that stopped alone
would leave the others waiting in a gradient all-reduce until the connection drops).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events

from monai_unet.io.atomic import atomic_path

__all__ = ["RESERVE_FACTOR", "TimeBudget"]

logger = logging.getLogger(__name__)

#: The final validation may take a little longer than the last one did: the reserve is this many times its time.
RESERVE_FACTOR = 1.2


class TimeBudget:
    """End training when ``budget_s`` seconds of wall clock are spent; decay the learning rate by elapsed time.

    Args:
        budget_s: seconds for the whole run (training and validations), from the trainer's start.
        optimizer: its parameter groups' ``lr`` are set at every iteration.
        validator: the evaluator (MONAI ``SupervisedEvaluator``) run once more at the end when the last iteration
            was not validated; its runs are timed to reserve time for that final one, and each run's metrics get
            ``elapsed_s`` (budget seconds spent when it began), so the validation history is a time-to-accuracy
            curve.
        power: exponent of the polynomial decay (0.9, as nnU-Net).
        validation_estimate_s: seconds reserved for the final validation before any validation has been timed.
        reserve_validations: validations' worth of time kept free at the end: 1 for the final validation, more when
            other validation passes follow training (the mirroring check adds ``2 ** axes``).
        summary_path: optional JSON file written when training ends: seconds, iterations, epochs, validations.

    The elapsed time is part of ``state_dict``, so a run resumed from a checkpoint continues the same schedule.
    """

    def __init__(
        self,
        budget_s: float,
        optimizer: torch.optim.Optimizer,
        validator: Engine | None = None,
        power: float = 0.9,
        validation_estimate_s: float = 0.0,
        reserve_validations: float = 1.0,
        summary_path: str | Path | None = None,
    ) -> None:
        if budget_s <= 0:
            raise ValueError(f"budget_s must be positive seconds, got {budget_s}")
        self.budget_s = float(budget_s)
        self.optimizer = optimizer
        self.validator = validator
        self.power = float(power)
        self.validation_s = float(validation_estimate_s)
        if reserve_validations < 0:
            raise ValueError(f"reserve_validations must be 0 or more, got {reserve_validations}")
        self.reserve_validations = float(reserve_validations)
        self.summary_path = Path(summary_path) if summary_path is not None else None
        self.initial_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self._offset = 0.0
        self._start: float | None = None
        self._validations = 0
        self._validated_iteration = -1
        self._validation_started = 0.0
        self._trainer: Engine | None = None
        self._training = False

    # ------------------------------------------------------------------------------------------------- clock
    def elapsed(self) -> float:
        """Seconds of the budget spent so far (including those before a resume)."""
        return self._offset if self._start is None else self._offset + time.monotonic() - self._start

    @property
    def horizon_s(self) -> float:
        """Seconds at which training stops: the budget less the reserve for the validations after it."""
        reserve = RESERVE_FACTOR * self.reserve_validations * self.validation_s if self.validator is not None else 0.0
        return max(self.budget_s - reserve, 1e-3)

    def fraction(self) -> float:
        """Fraction of the training horizon spent, in [0, 1] (rank 0's, when processes train together)."""
        elapsed, horizon = self._shared_clock()
        return min(elapsed / horizon, 1.0)

    def _shared_clock(self) -> tuple[float, float]:
        """(elapsed seconds, training horizon in seconds): this process's own, or rank 0's under DDP."""
        clock = (self.elapsed(), self.horizon_s)
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return clock
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        shared = torch.tensor(clock, dtype=torch.float64, device=device)
        dist.broadcast(shared, src=0)
        return float(shared[0]), float(shared[1])

    # ----------------------------------------------------------------------------------------------- events
    def attach(self, trainer: Engine) -> None:
        """Attach to the trainer (and time the validator's runs)."""
        self._trainer = trainer
        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.ITERATION_STARTED, self._set_learning_rate)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._stop_when_spent)
        trainer.add_event_handler(Events.COMPLETED, self._completed)
        if self.validator is not None:
            self.validator.add_event_handler(Events.STARTED, self._validation_begins)
            self.validator.add_event_handler(Events.COMPLETED, self._validation_ends)

    def start_clock(self) -> None:
        """Start counting now (call it first thing in a run, so loading and caching the data count too); without
        it the clock starts with the trainer."""
        if self._start is None:
            self._start = time.monotonic()

    def _started(self, engine: Engine) -> None:
        self.start_clock()
        self._training = True

    def _set_learning_rate(self, engine: Engine) -> None:
        factor = (1.0 - self.fraction()) ** self.power
        for group, lr in zip(self.optimizer.param_groups, self.initial_lrs, strict=True):
            group["lr"] = lr * factor

    def _stop_when_spent(self, engine: Engine) -> None:
        elapsed, horizon = self._shared_clock()
        if elapsed >= horizon:
            logger.info("time budget: %.0f of %.0f s spent, stopping training", elapsed, self.budget_s)
            engine.terminate()

    def _validation_begins(self, engine: Engine) -> None:
        self._validation_started = time.monotonic()
        # the validation history records it with the metrics: the time-to-accuracy curve of the run
        engine.state.metrics["elapsed_s"] = round(self.elapsed(), 1)

    def _validation_ends(self, engine: Engine) -> None:
        self.validation_s = time.monotonic() - self._validation_started
        self._validations += 1
        if self._trainer is None:
            return
        self._validated_iteration = self._trainer.state.iteration
        if self._training:  # spent already: stop before the next iteration, which would need a validation of its own
            self._stop_when_spent(self._trainer)

    def _completed(self, engine: Engine) -> None:
        self._training = False
        if self.validator is not None and self._validated_iteration != engine.state.iteration:
            self.validator.run(engine.state.epoch)
        if self.summary_path is not None:
            summary = {
                "budget_s": self.budget_s,
                "seconds": round(self.elapsed(), 1),
                "iterations": int(engine.state.iteration),
                "epochs": int(engine.state.epoch),
                "validations": self._validations,
                "last_validation_s": round(self.validation_s, 2),
            }
            self.summary_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.summary_path) as tmp:
                Path(tmp).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed(), "validation_s": self.validation_s, "validations": self._validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._offset = float(state["elapsed_s"])
        self.validation_s = float(state["validation_s"])
        self._validations = int(state["validations"])
        if self._start is not None:
            self._start = time.monotonic()
