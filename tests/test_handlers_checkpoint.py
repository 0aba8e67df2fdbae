"""Atomic full-state checkpoints and resume, on real MONAI/ignite engines training a tiny U-Net."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import LrScheduleHandler, MeanDice, ValidationHandler, from_engine
from monai.transforms import AsDiscreted
from monai.utils import set_determinism

from monai_unet.handlers import TrainingCheckpoint, ValidationHistory
from monai_unet.networks import UNet


def _data() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    items = []
    for _ in range(4):
        image = torch.rand(1, 32, 32, generator=generator)
        items.append({"image": image, "label": (image > 0.5).float()})
    return items


def _run(run_dir: Path, max_epochs: int, resume: bool) -> tuple[UNet, TrainingCheckpoint, ValidationHistory]:
    set_determinism(seed=0)
    net = UNet(2, 1, 2, features=(4, 8), padding="same", dropout=0.0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    loader = DataLoader(_data(), batch_size=2, shuffle=False)
    post = AsDiscreted(keys=("pred", "label"), argmax=(True, False), to_onehot=2)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=net,
        postprocessing=post,
        key_val_metric={
            "val_dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))
        },
    )
    history = ValidationHistory(net, "val_dice", run_dir / "model.pt", csv_path=run_dir / "history.csv")
    history.attach(evaluator)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=loader,
        network=net,
        optimizer=optimizer,
        loss_function=lambda pred, label: torch.nn.functional.cross_entropy(pred, label[:, 0].long()),
        train_handlers=[
            LrScheduleHandler(scheduler, print_lr=False),
            ValidationHandler(validator=evaluator, interval=1, epoch_level=True),
        ],
    )
    checkpoint = TrainingCheckpoint(
        run_dir,
        {"network": net, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer, "history": history},
        resume=resume,
    )
    checkpoint.attach(trainer)
    trainer.run()
    return net, checkpoint, history


def test_resume_continues_a_killed_run_exactly(tmp_path):
    whole, _, whole_history = _run(tmp_path / "whole", max_epochs=4, resume=False)
    _run(tmp_path / "split", max_epochs=2, resume=False)  # "killed" after the epoch-2 checkpoint
    resumed, checkpoint, history = _run(tmp_path / "split", max_epochs=4, resume=True)

    assert [row["epoch"] for row in history.history] == [1, 2, 3, 4]
    assert history.history == whole_history.history  # same metric history
    assert (history.best_epoch, history.best_metric) == (whole_history.best_epoch, whole_history.best_metric)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    state = torch.load(checkpoint.path, weights_only=True)
    assert state["trainer"]["iteration"] == 4 * 2  # 4 epochs of 2 batches
    with open(tmp_path / "split" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert math.isclose(float(rows[-1]["val_dice"]), history.history[-1]["val_dice"], rel_tol=1e-6)
    best = torch.load(tmp_path / "split" / "model.pt", map_location="cpu", weights_only=True)
    assert set(best) == set(resumed.state_dict())
    assert not list((tmp_path / "split").glob(".*.part*")), "temporary files left behind"


def test_resume_without_checkpoint_starts_fresh_and_corrupt_checkpoint_is_named(tmp_path):
    _, checkpoint, history = _run(tmp_path, max_epochs=1, resume=True)
    assert [row["epoch"] for row in history.history] == [1]
    checkpoint.path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"checkpoint_last\.pt: cannot load the training checkpoint"):
        _run(tmp_path, max_epochs=2, resume=True)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    _, checkpoint, _ = _run(tmp_path, max_epochs=1, resume=False)
    before = checkpoint.path.read_bytes()

    class Exploding:
        def state_dict(self):
            raise RuntimeError("disk full")

    checkpoint.save_dict["broken"] = Exploding()
    with pytest.raises(RuntimeError, match="disk full"):
        checkpoint.save()
    assert checkpoint.path.read_bytes() == before
    assert not list(tmp_path.glob(".*.part*"))
