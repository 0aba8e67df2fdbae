"""A short measured calibration of the training step on this machine, so the plan fits its time budget.

One training step is what the bundle's trainer runs per iteration: the random augmentation of a batch of patches
(it runs on the same CPU threads, ``num_workers`` 0 on a 2-core machine), then a forward and backward pass of the
planned network with the planned loss (under bfloat16 autocast where training will use it:
:class:`~monai_unet.inferers.MixedPrecisionInferer`), and an optimiser step. Both are timed: the augmentation is the
planned per-patch chain (:func:`~monai_unet.plan.augmentation.patch_augmentation_steps`) on random patches, the crop
before it is left out (its class locations are cached, so it costs little). Each measurement is the fastest of a few
repeats after one warm-up; a candidate is a few seconds of work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["StepTiming", "time_training_step"]


@dataclass(frozen=True)
class StepTiming:
    """Seconds per training iteration (augmentation included), per forward pass of one patch (inference), and the
    augmentation's part of the iteration."""

    train_step_s: float
    forward_s: float
    augmentation_s: float = 0.0


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
    precision: str = "auto",
    repeats: int = 3,
) -> StepTiming:
    """Time one optimiser step of ``UNet(**network_kwargs)`` on ``batch_size`` random patches, and one forward pass.

    Args:
        network_kwargs: keyword arguments of :class:`monai_unet.networks.UNet`.
        patch_size: spatial patch shape in voxels.
        batch_size: patches per step.
        device: ``"cpu"`` or ``"cuda"``.
        precision: the training precision (:data:`monai_unet.inferers.PRECISIONS`). The forward pass of one patch
            is timed as validation runs it: the inference fast path uses bfloat16 wherever the hardware does it
            natively, whatever the training precision.
        repeats: timed repeats after the warm-up; the fastest is returned (the step's cost on this machine when
            nothing else runs, which is how training runs: other work only ever adds to a timing).
    """
    from monai.losses import DiceCELoss

    from monai_unet.inferers import MixedPrecisionInferer
    from monai_unet.networks import UNet

    torch.manual_seed(0)
    net = UNet(**network_kwargs).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    inferer, inference = MixedPrecisionInferer(precision), MixedPrecisionInferer("auto")
    shape = (batch_size, network_kwargs["in_channels"], *patch_size)
    image = torch.randn(shape, device=device)
    label = torch.randint(0, network_kwargs["out_channels"], (batch_size, 1, *patch_size), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(inferer(image, net), label)
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
            inference(one, net)
        if device == "cuda":
            torch.cuda.synchronize()

    # the fastest of a few: one hiccup of the machine distorted a median of two (a CVC plan once estimated 36 s per
    # validation from it, planned 3 validations, and each took 8-14 s; a BRATS plan timed its smallest rung 1.6x slow)
    forward_s = _timings(forward, 2 * repeats - 1)[0]
    augmentation_s = batch_size * _augmentation_seconds(network_kwargs, patch_size, repeats)
    return StepTiming(train_step_s=train_s + augmentation_s, forward_s=forward_s, augmentation_s=augmentation_s)


def _augmentation_seconds(network_kwargs: dict, patch_size: Sequence[int], repeats: int) -> float:
    """Seconds of the planned per-patch augmentation on one random patch (and its label) of ``patch_size``."""
    from monai.bundle import ConfigParser

    from monai_unet.plan.augmentation import choose_augmentation, patch_augmentation_steps

    augmentation, _ = choose_augmentation(len(patch_size), patch_size, None)
    steps = patch_augmentation_steps(augmentation)
    chain = ConfigParser({"patch_size": list(patch_size), "chain": {"_target_": "Compose", "transforms": steps}})
    transform = chain.get_parsed_content("chain")
    transform.set_random_state(0)
    crop = [p + 2 * m for p, m in zip(patch_size, augmentation["margin"], strict=True)]
    sample = {
        "image": torch.randn(network_kwargs["in_channels"], *crop),
        "label": torch.randint(0, network_kwargs["out_channels"], (1, *crop)).float(),
    }
    return _timings(lambda: transform(dict(sample)), repeats)[0]
