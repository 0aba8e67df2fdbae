"""The ISBI 2012 EM challenge measures the U-Net paper reports: pixel error and foreground-restricted Rand error.

Both compare a membrane probability map with a binary membrane ground truth (membrane = 1, cell interior = 0).

- Pixel error: the fraction of pixels whose thresholded class differs from the ground truth (the squared Euclidean
  distance between the binary maps, normalised by the pixel count).
- Foreground-restricted Rand error (Arganda-Carreras et al. 2015, the challenge's "Rand error"): cells are the
  4-connected components of the non-membrane pixels, in the ground truth and in the thresholded prediction. Over
  the pixels that are cell interior in the ground truth (membrane pixels of the ground truth are left out), with
  ``p_ij`` the fraction of those pixels in predicted cell i and true cell j, ``s_i`` and ``t_j`` the row and column
  sums, and predicted membrane pixels counted as one-pixel segments each:
  ``F = 2 Σ p_ij² / (Σ s_i² + Σ t_j²)`` and the error is ``1 − F``.
- "Best threshold": the challenge scored the best over thresholds of the probability map; ``best_threshold_errors``
  scans them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from scipy import ndimage

__all__ = [
    "ISBIErrorMetric",
    "best_threshold_errors",
    "pixel_error",
    "rand_error",
]

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def _as_2d_numpy(array: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    array = np.squeeze(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be one 2D image (H, W) after squeezing, got shape {array.shape}.")
    return array


def _prediction_and_truth(
    membrane_probability: np.ndarray | torch.Tensor, membrane_truth: np.ndarray | torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) probability and boolean membrane truth, checked to share one shape."""
    prob = _as_2d_numpy(membrane_probability, "membrane_probability")
    truth = _as_2d_numpy(membrane_truth, "membrane_truth") > 0
    if prob.shape != truth.shape:
        raise ValueError(f"prediction shape {prob.shape} differs from ground truth shape {truth.shape}.")
    return prob, truth


def pixel_error(
    membrane_probability: np.ndarray | torch.Tensor, membrane_truth: np.ndarray | torch.Tensor, threshold: float = 0.5
) -> float:
    """Fraction of pixels misclassified at ``threshold``.

    Args:
        membrane_probability: (H, W) membrane probability in [0, 1].
        membrane_truth: (H, W) binary ground truth, membrane = 1 (nonzero).
        threshold: probability at or above which a pixel is membrane.
    """
    prob, truth = _prediction_and_truth(membrane_probability, membrane_truth)
    return float(np.mean((prob >= threshold) != truth))


def rand_error(
    membrane_probability: np.ndarray | torch.Tensor, membrane_truth: np.ndarray | torch.Tensor, threshold: float = 0.5
) -> float:
    """Foreground-restricted Rand error (1 − Rand F-score) of the cells found at ``threshold``; see module docs.

    Args:
        membrane_probability: (H, W) membrane probability in [0, 1].
        membrane_truth: (H, W) binary ground truth, membrane = 1 (nonzero).
        threshold: probability at or above which a pixel is membrane.
    """
    prob, truth = _prediction_and_truth(membrane_probability, membrane_truth)
    true_cells, _ = ndimage.label(~truth)
    pred_cells, _ = ndimage.label(prob < threshold)
    inside = true_cells > 0
    if not inside.any():
        raise ValueError("the ground truth has no cell interior pixels; the Rand error is undefined.")
    t = true_cells[inside].astype(np.int64)
    s = pred_cells[inside].astype(np.int64)
    n = float(t.size)
    # Contingency counts of (predicted cell, true cell); predicted membrane (s == 0) pixels are singletons.
    in_cell = s > 0
    joint = np.bincount(s[in_cell] * (t.max() + 1) + t[in_cell])
    singletons = float(np.count_nonzero(~in_cell))
    sum_joint = (np.square(joint, dtype=np.float64).sum() + singletons) / n**2
    sum_pred = (np.square(np.bincount(s[in_cell]), dtype=np.float64).sum() + singletons) / n**2
    sum_true = np.square(np.bincount(t), dtype=np.float64).sum() / n**2
    return float(1.0 - 2.0 * sum_joint / (sum_pred + sum_true))


def best_threshold_errors(
    membrane_probability: np.ndarray | torch.Tensor,
    membrane_truth: np.ndarray | torch.Tensor,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """The lowest pixel and Rand errors over ``thresholds``, with the thresholds that reach them."""
    pixel = [pixel_error(membrane_probability, membrane_truth, t) for t in thresholds]
    rand = [rand_error(membrane_probability, membrane_truth, t) for t in thresholds]
    return {
        "pixel_error": min(pixel),
        "pixel_threshold": float(thresholds[int(np.argmin(pixel))]),
        "rand_error": min(rand),
        "rand_threshold": float(thresholds[int(np.argmin(rand))]),
    }


class ISBIErrorMetric(CumulativeIterationMetric):
    """Pixel or Rand error per image, as a MONAI metric (usable in ignite handlers and bundle configs).

    Args:
        error: ``"pixel"`` or ``"rand"``.
        threshold: a probability, or ``"best"`` for the lowest error over ``DEFAULT_THRESHOLDS`` per image.
        membrane_channel: when ``y_pred`` has several channels (softmax probabilities), the membrane's channel.

    ``y_pred``: (B, C, H, W) probabilities (C = 1: membrane probability). ``y``: (B, 1, H, W) binary membrane
    ground truth, or (B, C, H, W) one-hot with the membrane in ``membrane_channel``. Per-image values (B, 1);
    ``aggregate()`` returns the mean.
    """

    def __init__(self, error: str = "rand", threshold: float | str = 0.5, membrane_channel: int = 1) -> None:
        super().__init__()
        if error not in ("pixel", "rand"):
            raise ValueError(f"error must be 'pixel' or 'rand', got {error!r}.")
        if threshold != "best" and not (isinstance(threshold, float | int) and 0 < threshold < 1):
            raise ValueError(f"threshold must be in (0, 1) or 'best', got {threshold!r}.")
        self.error, self.threshold, self.membrane_channel = error, threshold, membrane_channel

    def _pick(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:, 0] if tensor.shape[1] == 1 else tensor[:, self.membrane_channel]

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("ISBIErrorMetric needs the ground truth y.")
        probs, truths = self._pick(y_pred), self._pick(y)
        values = []
        for prob, truth in zip(probs, truths, strict=True):
            if self.threshold == "best":
                values.append(best_threshold_errors(prob, truth)[f"{self.error}_error"])
            else:
                measure = pixel_error if self.error == "pixel" else rand_error
                values.append(measure(prob, truth, float(self.threshold)))
        return torch.tensor(values, dtype=torch.float32).unsqueeze(1)

    def aggregate(self) -> torch.Tensor:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("ISBIErrorMetric has no values yet: call it on predictions first.")
        return data.mean()
