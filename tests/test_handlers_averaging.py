"""WeightAverage on real ignite engines: the average follows the decay schedule, validations see it, training
continues from its own weights, and a checkpointed average resumes."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_unet.handlers import WeightAverage


def _trainer(network: torch.nn.Module) -> Engine:
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    target = torch.tensor([[2.0, -1.0]])

    def step(engine: Engine, batch: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = ((network(batch) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return Engine(step)


def test_validations_score_the_average_and_training_keeps_its_weights():
    torch.manual_seed(0)
    network = torch.nn.Linear(3, 2)
    trainer, seen = _trainer(network), []
    validator = Engine(lambda engine, batch: seen.append([p.detach().clone() for p in network.parameters()]))
    averaging = WeightAverage(network, validator, half_life=4)
    averaging.attach(trainer)

    expected = [p.detach().clone() for p in network.parameters()]
    trained: list[list[torch.Tensor]] = []

    def follow(engine: Engine) -> None:  # the schedule the docstring promises, step by step
        current = [p.detach().clone() for p in network.parameters()]
        steps = engine.state.iteration - 1
        decay = min(0.5 ** (1 / 4), (1 + steps) / (10 + steps)) if steps else 0.0
        for e, c in zip(expected, current, strict=True):
            e.mul_(decay).add_(c, alpha=1 - decay)
        trained.append(current)

    trainer.add_event_handler(Events.ITERATION_COMPLETED, follow)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: validator.run([0]))
    trainer.run([torch.randn(4, 3) for _ in range(6)], max_epochs=3)

    assert len(seen) == 3
    for got, want in zip(seen[-1], expected, strict=True):
        torch.testing.assert_close(got, want)  # the last validation scored the average
    for own, last in zip(network.parameters(), trained[-1], strict=True):
        assert torch.equal(own.detach(), last), "training's weights are back after the validation"
    assert not torch.equal(seen[-1][0], trained[-1][0]), "the average differs from the last step's weights"


def test_the_average_resumes_from_its_state():
    torch.manual_seed(1)
    network = torch.nn.Linear(3, 2)
    averaging = WeightAverage(network, Engine(lambda e, b: None), half_life=10)
    trainer = _trainer(network)
    averaging.attach(trainer)
    trainer.run([torch.randn(4, 3) for _ in range(5)], max_epochs=1)
    restored = WeightAverage(torch.nn.Linear(3, 2), Engine(lambda e, b: None), half_life=10)
    restored.load_state_dict(averaging.state_dict())
    assert int(restored.average.n_averaged) == 5
    for a, b in zip(restored.average.module.parameters(), averaging.average.module.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_half_life_must_be_positive():
    with pytest.raises(ValueError, match="half_life"):
        WeightAverage(torch.nn.Linear(1, 1), Engine(lambda e, b: None), half_life=0)


def test_a_planned_bundle_validates_and_checkpoints_the_average(tmp_path):
    """A plan averages by default: train.json builds the average, the run validates it and its checkpoint holds it;
    ``--no-average-weights`` builds none."""
    import json
    import math
    import subprocess
    import sys

    from plan_datasets import write_png_dataset

    from monai_unet.plan import make_plan, measure, read_dataset
    from monai_unet.plan.bundle import write_bundle
    from monai_unet.plan.calibrate import StepTiming

    def timer(network_kwargs, patch, batch, device="cpu", precision="auto", loss=None):
        work = math.prod(patch) * batch * network_kwargs["features"][0] ** 2
        return StepTiming(train_step_s=work * 2e-8, forward_s=work * 5e-9 / batch)

    dataset = read_dataset(write_png_dataset(tmp_path / "data"))
    fingerprint = measure(dataset, progress=False)
    plan = make_plan(dataset, fingerprint, 1.0, timer=timer)
    assert plan.optimiser["average_half_life"] >= 10
    assert f"half-life {plan.optimiser['average_half_life']} steps" in plan.reasons["optimiser"]
    assert (
        make_plan(dataset, fingerprint, 1.0, average_weights=False, timer=timer).optimiser["average_half_life"] is None
    )
    bundle = write_bundle(tmp_path / "bundle", plan, dataset, fingerprint, "averaged")
    train = json.loads((bundle / "configs" / "train.json").read_text())
    assert train["averaging"]["half_life"] == plan.optimiser["average_half_life"]
    assert "$@averaging.attach(@train#trainer)" in train["run"]
    run = tmp_path / "run"
    command = [sys.executable, "-m", "monai_unet.cli.main", "train", "--bundle", str(bundle), "--output-dir", str(run)]
    done = subprocess.run(
        [*command, "budget_minutes=0.1", "precision=fp32"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert int(state["averaging"]["n_averaged"]) == state["trainer"]["iteration"] > 0
    assert (run / "model.pt").is_file()
