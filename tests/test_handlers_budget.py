"""TimeBudget on real ignite engines: the schedule follows the clock and the reserve for the validations after
training is kept free."""

from __future__ import annotations

import itertools
import time

import pytest
import torch
from ignite.engine import Engine, Events

from monai_unet.handlers import TimeBudget


class _Validator(Engine):
    """An evaluator as MONAI's: ``run(global_epoch)`` runs its own data (one item)."""

    def run(self, global_epoch: int = 1) -> None:  # type: ignore[override]
        super().run(range(1), max_epochs=1)


def _engines(step_s: float, validation_s: float) -> tuple[Engine, Engine]:
    trainer = Engine(lambda engine, batch: time.sleep(step_s))
    validator = _Validator(lambda engine, batch: time.sleep(validation_s))
    return trainer, validator


@pytest.mark.parametrize("reserve_validations", [1.0, 5.0])
def test_training_stops_before_the_reserved_validations(tmp_path, reserve_validations):
    trainer, validator = _engines(step_s=0.01, validation_s=0.05)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    budget = TimeBudget(
        1.0,
        optimizer,
        validator=validator,
        validation_estimate_s=0.05,
        reserve_validations=reserve_validations,
        summary_path=tmp_path / "summary.json",
    )
    budget.attach(trainer)
    lrs: list[float] = []
    elapsed: list[float] = []
    horizons: list[float] = []
    validated: list[int] = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda engine: lrs.append(optimizer.param_groups[0]["lr"]))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: elapsed.append(budget.elapsed()))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: horizons.append(budget.horizon_s))
    validator.add_event_handler(Events.COMPLETED, lambda engine: validated.append(trainer.state.iteration))
    budget.start_clock()
    trainer.run(range(10), max_epochs=10_000)
    # the horizon is the budget less 1.2 x reserve_validations x the (estimated, then measured) validation time
    assert budget.horizon_s == pytest.approx(1.0 - 1.2 * reserve_validations * budget.validation_s)
    # (the final validation's measured time moves the horizon afterwards: compare with the one training stopped at)
    assert elapsed[-2] < horizons[-2] and horizons[-1] <= elapsed[-1], "stops at the first iteration past the horizon"
    assert validated == [trainer.state.iteration], "one final validation of the last iteration"
    assert lrs[0] == pytest.approx(1.0, abs=0.05) and all(a >= b for a, b in itertools.pairwise(lrs))
    assert lrs[-1] < 0.15, "the learning rate has nearly reached zero at the horizon"


def test_a_validation_ending_past_the_horizon_is_the_last(tmp_path):
    """An epoch's validation that ends past the horizon stops training there: no further iteration, so no second
    validation of an almost unchanged network, and the run ends within the budget."""
    trainer, validator = _engines(step_s=0.01, validation_s=0.3)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    budget = TimeBudget(1.0, optimizer, validator=validator, validation_estimate_s=0.05)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: validator.run(engine.state.epoch))
    budget.attach(trainer)
    validated: list[int] = []
    validator.add_event_handler(Events.COMPLETED, lambda engine: validated.append(trainer.state.iteration))
    budget.start_clock()
    trainer.run(range(40), max_epochs=10_000)
    # the first epoch's validation ends near 0.7 s, past the horizon its measured 0.3 s sets (1 - 1.2 x 0.3 s)
    assert validated == [40], "one validation, of the epoch's last iteration"
    assert trainer.state.iteration == 40
    assert budget.elapsed() < 1.0


def test_negative_reserve_is_refused():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="reserve_validations"):
        TimeBudget(10.0, optimizer, reserve_validations=-1)


def _train_on_rank(rank: int, init_file: str, results: dict) -> None:
    """One of two gloo processes: rank 1's own budget is 100x rank 0's, so only rank 0's clock can stop it."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        trainer = Engine(lambda engine, batch: time.sleep(0.01 * (rank + 1)))  # the processes run at different speeds
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        budget = TimeBudget(0.5 if rank == 0 else 50.0, optimizer)
        budget.attach(trainer)
        lrs: list[float] = []
        trainer.add_event_handler(Events.ITERATION_STARTED, lambda engine: lrs.append(optimizer.param_groups[0]["lr"]))
        trainer.run(range(10), max_epochs=10_000)
        results[rank] = (trainer.state.iteration, lrs)
    finally:
        dist.destroy_process_group()


def test_processes_training_together_follow_rank_zeros_clock(tmp_path):
    """Under DDP every process sets rank 0's learning rate (equal replicas) and stops at the same iteration (one
    stopping alone leaves the others in a gradient all-reduce until the connection drops)."""
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(
            _train_on_rank, args=(str(tmp_path / "rendezvous"), results), nprocs=2, join=True, start_method="spawn"
        )
        (iterations0, lrs0), (iterations1, lrs1) = results[0], results[1]
    assert iterations0 == iterations1 and iterations0 > 5
    assert lrs0 == pytest.approx(lrs1, abs=1e-12) and lrs1[-1] < 0.3, "rank 1 follows rank 0's decay, not its own"
