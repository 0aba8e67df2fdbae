"""A short measured calibration of the training step on this machine, so the plan fits its time budget.

One training step is what the bundle's trainer runs per iteration: a forward and backward pass of the planned
network on a batch of patches with the planned loss, and an optimiser step. The augmentation that runs before it on
the same CPU threads (``num_workers`` 0 on a 2-core machine) is not timed: a run does somewhat fewer iterations than
planned (the learning rate follows the elapsed time, so the schedule still ends with the budget). Each measurement is
the fastest of a few repeats after one warm-up step; a candidate is a few seconds of work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["StepTiming", "time_training_step"]


@dataclass(frozen=True)
class StepTiming:
    """Seconds per training iteration (network) and per forward pass of one patch (inference)."""

    train_step_s: float
    forward_s: float


def _timings(action, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``action`` after one warm-up call (allocations, oneDNN kernel selection)."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return sorted(times)


def time_training_step(
    network_kwargs: dict,
    patch_size: Sequence[int],
    batch_size: int,
    device: str = "cpu",
    repeats: int = 3,
) -> StepTiming:
    """Time one optimiser step of ``UNet(**network_kwargs)`` on ``batch_size`` random patches, and one forward pass.

    Args:
        network_kwargs: keyword arguments of :class:`monai_unet.networks.UNet`.
        patch_size: spatial patch shape in voxels.
        batch_size: patches per step.
        device: ``"cpu"`` or ``"cuda"``.
        repeats: timed repeats after the warm-up; the fastest is returned (the step's cost on this machine when
            nothing else runs, which is how training runs: other work only ever adds to a timing).
    """
    from monai.losses import DiceCELoss

    from monai_unet.networks import UNet

    torch.manual_seed(0)
    net = UNet(**network_kwargs).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    shape = (batch_size, network_kwargs["in_channels"], *patch_size)
    image = torch.randn(shape, device=device)
    label = torch.randint(0, network_kwargs["out_channels"], (batch_size, 1, *patch_size), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(net(image), label)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    net.train()
    train_s = _timings(step, repeats)[0]
    net.eval()
    one = image[:1]

    def forward() -> None:
        with torch.no_grad():
            net(one)
        if device == "cuda":
            torch.cuda.synchronize()

    # the fastest of a few: one hiccup of the machine distorted a median of two (a CVC plan once estimated 36 s per
    # validation from it, planned 3 validations, and each took 8-14 s; a BRATS plan timed its smallest rung 1.6x slow)
    return StepTiming(train_step_s=train_s, forward_s=_timings(forward, 2 * repeats - 1)[0])
