"""Shared check: a bundle's training and validation datasets cache every deterministic preprocessing step."""

from __future__ import annotations

from pathlib import Path

from monai.bundle import ConfigParser
from monai.transforms import Compose, Transform
from monai.transforms.traits import RandomizableTrait


def _not_cached(compose: Compose) -> int | None:
    """Index of the first step ``CacheDataset`` does not cache (its own rule), or None."""
    return compose.get_index_of_first(lambda t: isinstance(t, RandomizableTrait) or not isinstance(t, Transform))


def assert_caches_every_deterministic_step(bundle: Path) -> None:
    """Training stops caching at its first augmentation (a ``Rand*`` step), validation is cached whole."""
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "train.json")
    parser["bundle_root"] = str(bundle)
    train = parser.get_parsed_content("train#preprocessing")
    first = _not_cached(train)
    assert first is not None and type(train.transforms[first]).__name__.startswith("Rand")
    assert not any(type(t).__name__.startswith("Rand") for t in train.transforms[:first])
    assert _not_cached(parser.get_parsed_content("validate#preprocessing")) is None
