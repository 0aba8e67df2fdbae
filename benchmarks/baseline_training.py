"""The training loop both stock-MONAI baseline scripts share: wall-clock budget, periodic validation, best epoch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch


def train_within_budget(
    net: torch.nn.Module,
    loader: Iterable[dict],
    loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    minutes: float,
    validate: Callable[[], dict[str, float]],
    every: int,
    key: str,
    best_path: Path,
) -> dict:
    """Train ``net`` on ``loader`` (``image``/``label`` batches) until ``minutes`` of wall clock have passed.

    Every ``every`` epochs ``validate()`` runs with the network in eval mode (inside the budget); the epoch with the
    highest ``key`` is saved to ``best_path`` and reloaded at the end (a budget shorter than ``every`` epochs keeps
    the last epoch). Each epoch's row is printed as JSON.

    Returns:
        ``{"epochs", "best_epoch", "history"}``; ``net`` is left in eval mode.
    """
    start, epoch, best, history = time.monotonic(), 0, None, []
    while time.monotonic() - start < 60 * minutes:
        epoch += 1
        net.train()
        losses = []
        for batch in loader:
            if time.monotonic() - start >= 60 * minutes:
                break
            optimizer.zero_grad()
            loss = loss_function(net(batch["image"]), batch["label"])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "seconds": round(time.monotonic() - start, 1), "loss": float(np.mean(losses))}
        if epoch % every == 0:
            net.eval()
            with torch.no_grad():
                row.update(validate())
            if best is None or row[key] > best[key]:
                best = dict(row)
                torch.save(net.state_dict(), best_path)
        history.append(row)
        print(json.dumps(row), flush=True)
    if best is not None:
        net.load_state_dict(torch.load(best_path, weights_only=True))
    net.eval()
    return {"epochs": epoch, "best_epoch": best["epoch"] if best else None, "history": history}
