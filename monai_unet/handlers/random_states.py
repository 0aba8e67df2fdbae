"""The random state a training epoch draws from, as a checkpointable object.

A resumed run repeats the interrupted epoch exactly only if it starts from the same random numbers: the patch
order (torch's generator, which the sampler draws from), global numpy and Python draws, and the private generator
(``R``, a ``numpy.random.RandomState``) that every MONAI random transform owns. ``set_determinism`` only seeds them
at the start of a run; :class:`RandomStates` saves and restores them with the checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["RandomStates"]


def _numpy_state(generator: np.random.RandomState) -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = generator.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "gauss": [has_gauss, gauss]}


def _set_numpy_state(generator: np.random.RandomState, state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    generator.set_state((state["name"], keys, int(state["pos"]), int(state["gauss"][0]), float(state["gauss"][1])))


def _generators(transform: Any) -> Iterator[np.random.RandomState]:
    """The private generators of a transform and of every transform it composes, in order."""
    if isinstance(getattr(transform, "R", None), np.random.RandomState):
        yield transform.R
    for child in getattr(transform, "transforms", None) or ():
        yield from _generators(child)


class RandomStates:
    """``state_dict`` / ``load_state_dict`` over torch (CPU, and CUDA where present), numpy, Python and the
    generators of the random transforms in ``transforms`` (a MONAI ``Compose``, e.g. a training dataset's
    ``transform``), for :class:`monai_unet.handlers.TrainingCheckpoint`'s ``save_dict``.

    The states are tensors, numbers and strings only, so the checkpoint still loads with ``weights_only=True``.

    Raises:
        ValueError: on load, when the checkpoint holds a different number of transform generators (the run's
            augmentation changed since the checkpoint was written).
    """

    def __init__(self, transforms: Any = None) -> None:
        self.transforms = transforms

    def state_dict(self) -> dict[str, Any]:
        version, words, gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(np.random.mtrand._rand),
            "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
            "transforms": [_numpy_state(g) for g in _generators(self.transforms)],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        generators = list(_generators(self.transforms))
        if len(generators) != len(state["transforms"]):
            raise ValueError(
                f"the checkpoint holds {len(state['transforms'])} random transform states, this run has "
                f"{len(generators)}: the augmentation changed since it was written"
            )
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        _set_numpy_state(np.random.mtrand._rand, state["numpy"])
        python = state["python"]
        random.setstate((python["version"], tuple(int(w) for w in python["words"].tolist()), python["gauss"]))
        for generator, saved in zip(generators, state["transforms"], strict=True):
            _set_numpy_state(generator, saved)
