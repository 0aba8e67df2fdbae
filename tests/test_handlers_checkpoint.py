"""Atomic full-state checkpoints and resume, on real MONAI/ignite engines training a tiny U-Net."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import LrScheduleHandler, MeanDice, ValidationHandler, from_engine
from monai.transforms import AsDiscreted, Compose, RandFlipd, RandRotate90d
from monai.utils import set_determinism

from monai_unet.handlers import (
    CheckpointError,
    RandomStates,
    TrainingCheckpoint,
    ValidationHistory,
    latest_run_dir,
    new_run_dir,
)
from monai_unet.networks import UNet


def _data() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    items = []
    for _ in range(4):
        image = torch.rand(1, 32, 32, generator=generator)
        items.append({"image": image, "label": (image > 0.5).float()})
    return items


def _run(
    run_dir: Path,
    max_epochs: int,
    resume: bool,
    promote_path: Path | None = None,
    promote: bool | str = "if-missing",
    is_saver: bool = True,
) -> tuple[UNet, TrainingCheckpoint, ValidationHistory]:
    set_determinism(seed=0)
    net = UNet(2, 1, 2, features=(4, 8), padding="same", dropout=0.0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    flips = Compose([RandFlipd(("image", "label"), prob=0.5, spatial_axis=0), RandRotate90d(("image", "label"))])
    loader = DataLoader(Dataset(_data(), transform=flips), batch_size=2, shuffle=True)
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
    history = ValidationHistory(
        net,
        "val_dice",
        run_dir / "model.pt",
        run_dir / "history.csv",
        promote_path=promote_path,
        promote=promote,
        is_saver=is_saver,
    )
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
        {
            "network": net,
            "optimizer": optimizer,
            "lr_scheduler": scheduler,
            "trainer": trainer,
            "history": history,
            "random": RandomStates(flips),
        },
        resume=resume,
        is_saver=is_saver,
    )
    checkpoint.attach(trainer)
    trainer.run()
    return net, checkpoint, history


def test_resume_continues_a_killed_run_exactly(tmp_path):
    """Shuffled batches and random flips/rotations: the resumed epochs 3-4 draw what the whole run drew (the random
    states are in the checkpoint), so weights and metrics match a run that was never interrupted."""
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
    assert not list((tmp_path / "split").glob(".*.tmp")), "temporary files left behind"


def test_resume_without_checkpoint_starts_fresh_and_corrupt_checkpoint_is_named(tmp_path):
    _, checkpoint, history = _run(tmp_path, max_epochs=1, resume=True)
    assert [row["epoch"] for row in history.history] == [1]
    left = tmp_path / ".checkpoint_last.pt.abc123.tmp"  # what a run killed mid-save leaves
    left.mkdir()
    (left / "content").write_bytes(b"half a checkpoint")
    whole = checkpoint.path.read_bytes()
    checkpoint.path.write_bytes(whole[: len(whole) // 2])  # truncated
    with pytest.raises(CheckpointError, match=r"checkpoint_last\.pt: cannot load the training checkpoint .*Delete it"):
        _run(tmp_path, max_epochs=2, resume=True)
    assert not left.exists(), "resuming sweeps the killed run's temporaries"


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
    assert not list(tmp_path.glob(".*.tmp"))


def test_files_never_run_ahead_of_their_checkpoint(tmp_path, monkeypatch):
    """model.pt and the history CSV are written after the checkpoint they belong to: a run killed between an
    epoch's validation and its checkpoint leaves them as the last checkpoint knows them, and one killed between the
    checkpoint and its files gets them written from the checkpoint when it resumes."""
    _run(tmp_path, max_epochs=2, resume=False)
    model, table = (tmp_path / "model.pt").read_bytes(), (tmp_path / "history.csv").read_text()

    def killed_before_the_checkpoint(self, engine=None):
        raise RuntimeError("killed")

    monkeypatch.setattr(TrainingCheckpoint, "save", killed_before_the_checkpoint)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path, max_epochs=3, resume=True)
    assert (tmp_path / "model.pt").read_bytes() == model and (tmp_path / "history.csv").read_text() == table
    monkeypatch.undo()

    flush = ValidationHistory.flush

    def killed_after_the_checkpoint(self):
        if self.history and self.history[-1]["epoch"] == 4:
            raise RuntimeError("killed")
        flush(self)

    monkeypatch.setattr(ValidationHistory, "flush", killed_after_the_checkpoint)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path, max_epochs=4, resume=True)
    state = torch.load(tmp_path / "checkpoint_last.pt", map_location="cpu", weights_only=True)["history"]
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3, 4]
    assert (tmp_path / "history.csv").read_text().count("\n") == 1 + 3, "the CSV stopped at epoch 3's checkpoint"
    monkeypatch.undo()

    _, _, history = _run(tmp_path, max_epochs=4, resume=True)  # nothing left to train: only the files
    with open(tmp_path / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3, 4]
    best = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=True)
    expected = state.get("unwritten_best")  # epoch 4's weights when epoch 4 was the best
    if expected is not None:
        assert history.best_epoch == 4
        for name, tensor in expected.items():
            assert torch.equal(best[name], tensor), name
    else:
        assert history.best_epoch < 4


def test_a_run_promotes_its_model_only_where_asked(tmp_path):
    """Shipped weights stay unless promote=true; a bundle without weights gets the run's; a resumed run that is
    asked to promote copies its best model so far."""
    shipped = tmp_path / "models" / "model.pt"
    _run(tmp_path / "first", max_epochs=1, resume=False, promote_path=shipped)  # none yet: "if-missing" promotes
    assert shipped.read_bytes() == (tmp_path / "first" / "model.pt").read_bytes()

    shipped.write_bytes(b"shipped weights")
    _, _, history = _run(tmp_path / "second", max_epochs=1, resume=False, promote_path=shipped)
    assert not history.promoting and shipped.read_bytes() == b"shipped weights"
    _run(tmp_path / "third", max_epochs=1, resume=False, promote_path=shipped, promote=False)
    assert shipped.read_bytes() == b"shipped weights"

    _, _, history = _run(tmp_path / "second", max_epochs=2, resume=True, promote_path=shipped, promote=True)
    assert history.promoting
    assert shipped.read_bytes() == (tmp_path / "second" / "model.pt").read_bytes()
    with pytest.raises(ValueError, match="promote must be"):
        ValidationHistory(UNet(2, 1, 2, features=(4, 8)), "val_dice", tmp_path / "m.pt", promote="yes")


def test_a_process_that_is_not_the_saver_keeps_the_history_and_writes_nothing(tmp_path):
    """Under DDP every process validates; ranks other than 0 keep the history but write no model, CSV or
    promoted weights beside rank 0's."""
    shipped = tmp_path / "models" / "model.pt"
    _, _, history = _run(tmp_path / "rank1", max_epochs=2, resume=False, promote_path=shipped, is_saver=False)
    assert [row["epoch"] for row in history.history] == [1, 2] and history.best_epoch in (1, 2)
    assert not shipped.exists() and not any((tmp_path / "rank1").glob("*"))


def test_run_folders_are_new_and_the_latest_checkpointed_one_is_found(tmp_path):
    runs = tmp_path / "runs"
    first, second = Path(new_run_dir(runs)), Path(new_run_dir(runs))
    assert first != second and first.parent == second.parent == runs and first.name.startswith("train-")
    assert not any(first.iterdir()) and not any(second.iterdir())
    assert latest_run_dir(runs) is None
    _run(first, max_epochs=1, resume=False)
    assert latest_run_dir(runs) == first
