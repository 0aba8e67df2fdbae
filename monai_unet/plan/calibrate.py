"""A short measured calibration of the training step on this machine, so the plan fits its time budget.

One training step is what the bundle's trainer runs per iteration: the random augmentation of a batch of patches
(it runs on the same CPU threads, ``num_workers`` 0 on a 2-core machine), then a forward and backward pass of the
planned network with the planned loss (its config, :func:`~monai_unet.plan.loss.loss_config`: the skeleton recall of
thin classes skeletonises every label patch on the CPU) under bfloat16 autocast where training will use it
(:class:`~monai_unet.inferers.MixedPrecisionInferer`), and an optimiser step. The batch is what the data loader gives
the trainer: ``MetaTensor`` image and label, the label a map of smooth random regions (not per-voxel noise, whose
skeleton would cost far more than a real label's). The augmentation is timed on its own: the planned per-patch chain
(:func:`~monai_unet.plan.augmentation.patch_augmentation_steps`) on random patches; the crop before it is left out
(its class locations are cached, so it costs little).

The step's time is the median of a few repeats after one warm-up, times :data:`RUN_OVERHEAD`: a training run's
mean iteration also pays the crop and collation of the batch, the engine's handlers and the machine's jitter over
minutes, and it came out 7-21 % above the fastest timed step (``benchmarks/RESULTS.md``). The forward
pass of one patch (validation) is the fastest of a few: one hiccup of the machine distorted a median of two (a CVC
plan once estimated 36 s per validation from it, and each took 8-14 s).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["RUN_OVERHEAD", "StepTiming", "region_labels", "time_training_step"]

#: A training run's mean iteration against the calibrated step (augmentation included): 1.07-1.21 measured on the
#: planned ACDC, ISBI, CVC-ClinicDB and BRATS bundles (``benchmarks/RESULTS.md``).
RUN_OVERHEAD = 1.15


@dataclass(frozen=True)
class StepTiming:
    """Seconds per training iteration as a run will average it (augmentation and :data:`RUN_OVERHEAD` included), per
    forward pass of one patch (inference), and the augmentation's part of the iteration."""

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
    loss: dict | None = None,
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
        repeats: timed repeats after the warm-up: the median step and the fastest of ``2 * repeats - 1`` forward
            passes are returned.
        loss: the planned loss's bundle config (:func:`~monai_unet.plan.loss.loss_config`); Dice + cross-entropy
            when not given.
    """
    from monai.bundle import ConfigParser
    from monai.data import MetaTensor

    from monai_unet.inferers import MixedPrecisionInferer
    from monai_unet.networks import UNet

    torch.manual_seed(0)
    net = UNet(**network_kwargs).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    config = loss or {"_target_": "DiceCELoss", "to_onehot_y": True, "softmax": True}
    loss_function = ConfigParser({"loss": config}).get_parsed_content("loss")
    inferer, inference = MixedPrecisionInferer(precision), MixedPrecisionInferer("auto")
    shape = (batch_size, network_kwargs["in_channels"], *patch_size)
    image = MetaTensor(torch.randn(shape)).to(device)
    label = MetaTensor(region_labels(batch_size, network_kwargs["out_channels"], patch_size)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(inferer(image, net), label)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    net.train()
    times = _timings(step, repeats)
    train_s = times[len(times) // 2]
    net.eval()
    one = image[:1]

    def forward() -> None:
        with torch.no_grad():
            inference(one, net)
        if device == "cuda":
            torch.cuda.synchronize()

    forward_s = _timings(forward, 2 * repeats - 1)[0]
    augmentation_s = batch_size * _augmentation_seconds(network_kwargs, patch_size, repeats)
    return StepTiming(
        train_step_s=RUN_OVERHEAD * (train_s + augmentation_s), forward_s=forward_s, augmentation_s=augmentation_s
    )


def region_labels(batch_size: int, num_classes: int, patch_size: Sequence[int]) -> torch.Tensor:
    """A label batch ``(batch_size, 1, *patch_size)`` of smooth random regions of ``num_classes`` classes: the
    arg-max of random scores on a grid 8x coarser, interpolated to the patch (regions some 8 voxels across)."""
    generator = torch.Generator().manual_seed(0)
    coarse = [max(2, round(p / 8)) for p in patch_size]
    scores = torch.randn(batch_size, num_classes, *coarse, generator=generator)
    mode = "bilinear" if len(patch_size) == 2 else "trilinear"
    smooth = torch.nn.functional.interpolate(scores, size=list(patch_size), mode=mode, align_corners=False)
    return smooth.argmax(dim=1, keepdim=True).float()


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
