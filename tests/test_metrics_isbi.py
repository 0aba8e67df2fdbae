"""ISBI 2012 pixel and foreground-restricted Rand errors, on hand-worked cases and a real ISBI label."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from monai_unet.metrics import ISBIErrorMetric, best_threshold_errors, pixel_error, rand_error


def _two_cells() -> np.ndarray:
    """A 9×9 membrane map (1 = membrane): a frame and a one-pixel wall between two cells of 7×3 pixels."""
    membrane = np.ones((9, 9), dtype=np.uint8)
    membrane[1:8, 1:4] = 0
    membrane[1:8, 5:8] = 0
    return membrane


def test_perfect_prediction_scores_zero():
    truth = _two_cells()
    assert pixel_error(truth.astype(float), truth) == 0.0
    assert rand_error(truth.astype(float), truth) == 0.0


def test_merging_two_equal_cells_costs_one_third():
    # One predicted cell covering both true cells of a pixels each: F = 2(2a²)/((2a)² + 2a²) = 2/3.
    truth = _two_cells()
    merged = truth.astype(float)
    merged[1:8, 4] = 0.0  # the wall between them is predicted as cell interior
    assert rand_error(merged, truth) == pytest.approx(1 / 3)
    assert pixel_error(merged, truth) == pytest.approx(7 / 81)


def test_predicted_membrane_inside_a_cell_counts_as_singletons():
    # Every interior pixel predicted membrane: each is its own segment, Σp² = Σs² = n/n², Σt² = 2a²/n².
    truth = _two_cells()
    n, a = 42, 21
    expected = 1 - 2 * (n / n**2) / (n / n**2 + 2 * a**2 / n**2)
    assert rand_error(np.ones((9, 9)), truth) == pytest.approx(expected)


def test_on_a_real_isbi_label(sample_data):
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data / "isbi2012_em" / "labels" / "00.png")))
    membrane = (label == 0).astype(np.uint8)
    thinner = ndimage.binary_erosion(membrane).astype(float)  # opens gaps in membranes: cells merge
    thicker = ndimage.binary_dilation(membrane).astype(float)  # keeps cells apart, only shrinks them
    assert rand_error(thinner, membrane) > 0.3 > rand_error(thicker, membrane) > 0
    # a soft map whose best threshold recovers the truth
    soft = 0.3 + 0.4 * membrane
    best = best_threshold_errors(soft, membrane)
    assert best["rand_error"] == 0.0 and best["pixel_error"] == 0.0
    assert 0.3 < best["rand_threshold"] <= 0.7
    assert rand_error(soft, membrane, threshold=0.2) > 0.9


def test_monai_metric_wrapper_accumulates_per_image_means():
    truth = torch.from_numpy(_two_cells()).float()[None, None]
    merged = truth.clone()
    merged[..., 1:8, 4] = 0
    metric = ISBIErrorMetric(error="rand", threshold=0.5)
    metric(y_pred=torch.cat([truth, merged]), y=torch.cat([truth, truth]))
    assert metric.aggregate().item() == pytest.approx((0 + 1 / 3) / 2)
    two_channel = torch.cat([1 - merged, merged], dim=1)  # softmax-style (background, membrane)
    pixel = ISBIErrorMetric(error="pixel", threshold="best")
    pixel(y_pred=two_channel, y=truth)
    assert pixel.aggregate().item() == pytest.approx(7 / 81)


def test_bad_arguments():
    with pytest.raises(ValueError, match="error must be"):
        ISBIErrorMetric(error="warping")
    with pytest.raises(ValueError, match="threshold must be"):
        ISBIErrorMetric(threshold=1.5)
    with pytest.raises(ValueError, match="differs from ground truth shape"):
        rand_error(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="no cell interior"):
        rand_error(np.zeros((4, 4)), np.ones((4, 4)))
