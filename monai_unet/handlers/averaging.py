"""An exponential moving average of the network's weights, which is what every validation scores and the best
model keeps.

Under a wall-clock budget the learning rate is high for most of the run, and the weights after any one step carry
that step's noise; their running average (Polyak averaging) is the better network at every point of the run, and
at the end, where the rate reaches zero, it averages the last steps. The average is updated after every training
step (``torch.optim.swa_utils.AveragedModel``, floating-point buffers included), and swapped into the network for
each validation and back out after it, so the validation, the saved best model and the checkpoints need no other
network: the validator sees the averaged weights, and training resumes from its own.

The decay per step is ``0.5 ** (1 / half_life)``, ramped up over the first steps as ``min(decay, (1 + n) / (10 +
n))`` so that the random initial weights are forgotten at once.
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage"]


class WeightAverage:
    """Keep an exponential moving average of ``network``'s weights and validate it.

    Args:
        network: the trained network (a ``DistributedDataParallel`` wrapper is looked through).
        validator: the evaluator whose runs score the average (swapped in at its start, out at its completion).
        half_life: steps after which a step's weights count half in the average.

    The average's state (``state_dict``) belongs in the training checkpoint, so a resumed run continues it.
    """

    def __init__(self, network: torch.nn.Module, validator: Engine, half_life: float) -> None:
        if half_life <= 0:
            raise ValueError(f"half_life must be a positive number of steps, got {half_life}")
        self.network = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
        self.validator = validator
        self.decay = 0.5 ** (1.0 / float(half_life))
        self.average = AveragedModel(self.network, multi_avg_fn=self._blend, use_buffers=True)
        self._own: list[torch.Tensor] = []

    def _blend(self, averaged: list[torch.Tensor], current: list[torch.Tensor], steps: torch.Tensor) -> None:
        decay = min(self.decay, (1.0 + float(steps)) / (10.0 + float(steps)))
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - decay)

    def _tensors(self, module: torch.nn.Module) -> list[torch.Tensor]:
        return [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]

    def attach(self, trainer: Engine) -> None:
        """Update the average after every step of ``trainer``; swap it in for the validator's runs."""
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        self.validator.add_event_handler(Events.STARTED, self._swap_in)
        self.validator.add_event_handler(Events.COMPLETED, self._swap_out)

    @torch.no_grad()
    def _update(self, engine: Engine) -> None:
        self.average.update_parameters(self.network)

    @torch.no_grad()
    def _swap_in(self, engine: Engine) -> None:
        if int(self.average.n_averaged) == 0:
            return  # nothing averaged yet (a validation before training): the network as it is
        own = self._tensors(self.network)
        self._own = [t.detach().clone() for t in own]
        torch._foreach_copy_([t.detach() for t in own], self._tensors(self.average.module))

    @torch.no_grad()
    def _swap_out(self, engine: Engine) -> None:
        if self._own:
            torch._foreach_copy_([t.detach() for t in self._tensors(self.network)], self._own)
            self._own = []

    def state_dict(self) -> dict[str, Any]:
        return self.average.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.load_state_dict(state)
