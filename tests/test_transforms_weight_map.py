"""The paper's weight map (equation 2): exact against a brute-force reference, class balance, and on a real ISBI
label the highest weights on the thin membranes between touching cells."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from monai_unet.transforms import BorderWeightMap, BorderWeightMapd
from monai_unet.transforms.weight_map import border_weight_map


def _reference(objects: np.ndarray, w0: float, sigma: float, spacing=None) -> np.ndarray:
    """Equation 2 by brute force: one full-image distance transform per object, no class weights (w_c = 1)."""
    ids = [i for i in np.unique(objects) if i != 0]
    distances = np.sort(np.stack([ndi.distance_transform_edt(objects != i, sampling=spacing) for i in ids]), axis=0)
    border = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    return 1.0 + np.where(objects == 0, border, 0.0)


def _random_instances(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """Touching blobs: a Voronoi partition of random seeds, with the cell borders cleared to background."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, dtype=np.int64)
    seeds[tuple(rng.integers(0, s, count) for s in shape)] = np.arange(1, count + 1)
    _, index = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    cells = seeds[tuple(index)]
    border = ndi.grey_dilation(cells, size=3) != ndi.grey_erosion(cells, size=3)
    return np.where(border, 0, cells * 7)  # non-contiguous instance values


@pytest.mark.parametrize(("shape", "spacing"), [((96, 80), None), ((24, 40, 36), (2.0, 1.0, 1.0))])
def test_matches_brute_force_equation_2(shape, spacing):
    objects = _random_instances(shape, 12, seed=len(shape))
    ours = border_weight_map(objects, w0=10.0, sigma=5.0, class_weights=None, spacing=spacing)
    reference = _reference(objects, 10.0, 5.0, spacing)
    # Ours drops the border term where it is below 1e-4 · w0 (d1 + d2 > 4.3 σ).
    np.testing.assert_allclose(ours, reference, atol=10.0 * 1e-4 + 1e-5, rtol=1e-5)
    assert ours.max() > 8  # there are narrow gaps: the term is large somewhere


def test_semantic_mask_objects_are_connected_components():
    mask = np.zeros((40, 40), dtype=np.uint8)
    mask[5:35, 5:19] = 255  # two cells separated by a two-pixel membrane (columns 19, 20)
    mask[5:35, 21:35] = 255
    weights = border_weight_map(mask, w0=10.0, sigma=5.0, object_label=255, class_weights=None)
    # Membrane column 19: d1 = 1, d2 = 2 -> 1 + 10 exp(-9 / 50); inside cells: w_c only.
    np.testing.assert_allclose(weights[20, 19], 1 + 10 * np.exp(-9 / 50), rtol=1e-6)
    assert np.all(weights[mask == 255] == 1.0)
    # Only one cell: no second object anywhere, no border term.
    single = border_weight_map(np.where(np.arange(40)[None, :] < 20, mask, 0), object_label=255, class_weights=None)
    assert np.all(single == 1.0)


def test_class_weights_balanced_supplied_and_none():
    mask = np.zeros((30, 30), dtype=np.int64)
    mask[:10] = 1
    balanced = border_weight_map(mask, object_label=1, w0=0.0)
    np.testing.assert_allclose(balanced.mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(balanced[0, 0] / balanced[-1, -1], 20 / 10)  # the rarer class weighs more
    supplied = border_weight_map(mask, object_label=1, w0=0.0, class_weights={0: 0.5, 1: 3.0})
    assert supplied[0, 0] == 3.0 and supplied[-1, -1] == 0.5
    with pytest.raises(ValueError, match="no weight for the class"):
        border_weight_map(mask, object_label=1, class_weights={1: 3.0})


def test_transform_and_dictionary_wrapper_keep_metadata():
    objects = _random_instances((64, 64), 8, seed=3)
    label = MetaTensor(torch.as_tensor(objects)[None], affine=torch.diag(torch.tensor([0.5, 0.5, 1.0, 1.0])))
    out = BorderWeightMapd(keys="label", output_keys="weight")({"label": label})
    assert out["weight"].shape == (1, 64, 64) and out["weight"].dtype == torch.float32
    assert isinstance(out["weight"], MetaTensor) and torch.equal(out["weight"].affine, label.affine)
    np.testing.assert_allclose(out["weight"][0].numpy(), border_weight_map(objects))
    with pytest.raises(ValueError, match=r"\(1, \*spatial\)"):
        BorderWeightMap()(torch.zeros(2, 8, 8))


def _isbi_weights_on_membranes(path) -> dict[str, float]:
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    weights = BorderWeightMap(object_label=255)(torch.as_tensor(label)[None])[0].numpy()
    cells, _ = ndi.label(label == 255)
    membrane = label == 0
    # Membrane pixels with two different cells within 3 pixels (7 × 7 window): thin membranes between touching cells.
    none = int(cells.max()) + 1  # "no cell" sentinel, above every cell id
    low = ndi.minimum_filter(np.where(cells > 0, cells, none), size=7)
    high = ndi.maximum_filter(cells, size=7)
    between = membrane & (low != none) & (low != high)
    top = weights >= np.quantile(weights, 0.99)
    return {
        "between": float(weights[between].mean()),
        "other_membrane": float(weights[membrane & ~between].mean()),
        "cells": float(weights[~membrane].mean()),
        "top1%_between": float(between[top].mean()),
        "top1%_membrane": float(membrane[top].mean()),
    }


def test_isbi_highest_weights_on_thin_membranes_between_touching_cells(sample_data):
    figures = _isbi_weights_on_membranes(sample_data / "isbi2012_em" / "labels" / "00.png")
    assert figures["top1%_membrane"] == 1.0  # the highest weights are all on membrane
    assert figures["top1%_between"] > 0.9  # ... and on membrane between two touching cells
    assert figures["between"] > 1.2 * figures["other_membrane"]
    assert figures["between"] > 5 * figures["cells"]


@pytest.mark.slow
def test_isbi_all_training_labels(shared_data):
    paths = sorted((shared_data / "isbi2012_em_membranes" / "labels").glob("*.png"))
    assert len(paths) >= 20
    for path in paths:
        figures = _isbi_weights_on_membranes(path)
        assert figures["top1%_membrane"] == 1.0, path
        assert figures["between"] > 1.2 * figures["other_membrane"] and figures["between"] > 5 * figures["cells"], path
