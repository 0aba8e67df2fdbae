"""``ClassLocationsd``: each class's voxels found once (cached), so foreground-oversampled crops skip the search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import ClassesToIndices, RandCropByLabelClassesd

from monai_unet.transforms import ClassLocations, ClassLocationsd


def _label(shape=(30, 26, 12), seed=0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.int64)
    label[5:12, 4:9, 2:6] = 1
    label[rng.random(shape) < 0.02] = 2
    return torch.from_numpy(label)[None].float()


def test_uncapped_locations_are_monais_class_indices():
    label = _label()
    ours = ClassLocations(num_classes=4, max_per_class=None)(label)
    monai = ClassesToIndices(num_classes=4)(label)
    assert len(ours) == 4 and ours[3].size == 0, "an absent class has no locations"
    for mine, theirs in zip(ours, monai, strict=True):
        np.testing.assert_array_equal(mine, np.asarray(theirs))


def test_the_cap_keeps_evenly_spread_locations_without_a_random_draw():
    label = _label()
    capped = ClassLocations(num_classes=3, max_per_class=50)(label)
    full = ClassLocations(num_classes=3, max_per_class=None)(label)
    flat = label.numpy().reshape(-1)
    for c in range(3):
        assert capped[c].size == min(50, full[c].size)
        assert np.isin(capped[c], full[c]).all() and (flat[capped[c]] == c).all()
    background = capped[0]
    assert background[0] == full[0][0] and background[-1] == full[0][-1], "spread from first to last"
    again = ClassLocations(num_classes=3, max_per_class=50)(label)
    assert all(np.array_equal(a, b) for a, b in zip(capped, again, strict=True)), "deterministic"
    with pytest.raises(ValueError, match="max_per_class"):
        ClassLocations(num_classes=3, max_per_class=0)


def test_crops_from_cached_locations_centre_on_foreground_as_often_as_monais_search():
    data = {"image": torch.randn(1, 30, 26, 12), "label": _label()}
    located = ClassLocationsd("label", num_classes=3)(data)
    assert located["label_locations"][1].size == int((data["label"] == 1).sum())
    options = {"keys": ["image", "label"], "label_key": "label", "spatial_size": [5, 5, 5], "num_classes": 3}
    options |= {"ratios": [1.0, 1.0, 1.0], "num_samples": 4, "warn": False}
    cached = RandCropByLabelClassesd(indices_key="label_locations", **options)
    searched = RandCropByLabelClassesd(**options)
    cached.set_random_state(0)
    searched.set_random_state(0)
    for _ in range(5):
        for a, b in zip(cached(located), searched(data), strict=True):
            torch.testing.assert_close(a["image"], b["image"])  # the same draws pick the same voxels
