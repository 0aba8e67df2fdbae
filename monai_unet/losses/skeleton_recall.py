"""Skeleton recall for thin classes (Kirchhoff et al. 2024, "Skeleton Recall Loss for Connectivity Conserving and
Resource Efficient Segmentation of Thin Tubular Structures"), added to MONAI's Dice + cross-entropy.

A thin class (a membrane, a vessel, a myocardial wall) can score a good Dice while its prediction has gaps, and a gap
of one pixel in a membrane merges two cells. The recall term asks the predicted probabilities to cover the skeleton
of the true class: ``1 - Σ p·S / Σ S`` with ``S`` the skeleton of the label, widened by one voxel (face neighbours,
kept inside the label) so a prediction one voxel off the centre line still counts. The skeleton is computed on the
CPU from the augmented label of each training patch (``skimage.morphology.skeletonize``, 2D or 3D; slice by slice
along the coarse axis of anisotropic volumes, where a wall is a ring in every slice); the probabilities carry the
gradient, the skeleton none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from scipy import ndimage
from skimage.morphology import skeletonize

__all__ = ["DiceCESkeletonRecallLoss", "tubed_skeleton"]


def _tubed(mask: np.ndarray) -> np.ndarray:
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return ndimage.binary_dilation(skeletonize(mask), structure=cross) & mask


def tubed_skeleton(labels: np.ndarray, classes: Sequence[int], slice_axis: int | None = None) -> np.ndarray:
    """Skeletons of ``classes`` in a label-index batch, widened by one voxel inside each class.

    Args:
        labels: class indices ``(B, *spatial)``, 2D or 3D spatial.
        classes: the class indices to skeletonise.
        slice_axis: for 3D labels, the spatial axis (0-based) along which each slice is skeletonised in 2D (the
            coarse axis of anisotropic data); ``None``: the whole volume at once.

    Returns:
        bool ``(B, len(classes), *spatial)``.
    """
    out = np.zeros((labels.shape[0], len(classes), *labels.shape[1:]), dtype=bool)
    for b in range(labels.shape[0]):
        for k, c in enumerate(classes):
            mask = labels[b] == c
            if not mask.any():
                continue
            if slice_axis is None or mask.ndim == 2:
                out[b, k] = _tubed(mask)
                continue
            planes = np.moveaxis(mask, slice_axis, 0)
            target = np.moveaxis(out[b, k], slice_axis, 0)  # a view: writing it fills out[b, k]
            for z, plane in enumerate(planes):
                if plane.any():
                    target[z] = _tubed(plane)
    return out


class DiceCESkeletonRecallLoss(DiceCELoss):
    """``DiceCELoss(to_onehot_y=True, softmax=True, ...)`` plus ``skeleton_weight`` × the skeleton recall of
    ``skeleton_classes``.

    The recall is pooled over the batch per class (like MONAI's batch Dice) and averaged over the classes whose
    skeleton is present in the batch; a batch without any adds nothing.

    Args:
        skeleton_classes: class indices (foreground) whose skeleton recall is added.
        skeleton_weight: weight of the recall term against Dice + cross-entropy.
        slice_axis: spatial axis (0-based) of 3D patches to skeletonise slice by slice (anisotropic data).
        **kwargs: the arguments of ``monai.losses.DiceCELoss`` (``include_background``, ``batch``, ...);
            ``to_onehot_y`` and ``softmax`` are set.

    Shapes:
        input ``(B, C, *spatial)`` logits; target ``(B, 1, *spatial)`` label indices.
    """

    def __init__(
        self,
        skeleton_classes: Sequence[int],
        skeleton_weight: float = 1.0,
        slice_axis: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(to_onehot_y=True, softmax=True, **kwargs)
        if not skeleton_classes:
            raise ValueError("skeleton_classes is empty: use DiceCELoss when no class is thin")
        self.skeleton_classes = [int(c) for c in skeleton_classes]
        self.skeleton_weight = float(skeleton_weight)
        self.slice_axis = slice_axis

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape[1] != 1:
            raise ValueError(f"skeleton recall needs label indices (B, 1, *spatial), got {tuple(target.shape)}")
        if max(self.skeleton_classes) >= input.shape[1]:
            raise ValueError(
                f"skeleton class {max(self.skeleton_classes)} is beyond the network's {input.shape[1]} output channels"
            )
        base = super().forward(input, target)
        labels = target[:, 0].detach().to("cpu", torch.int64).numpy()
        skeleton = torch.from_numpy(tubed_skeleton(labels, self.skeleton_classes, self.slice_axis)).to(input.device)
        probabilities = torch.softmax(input.float(), dim=1)[:, self.skeleton_classes]
        reduce = [0, *range(2, input.ndim)]
        length = skeleton.sum(dim=reduce)
        present = length > 0
        if not bool(present.any()):
            return base
        covered = (probabilities * skeleton).sum(dim=reduce)
        recall = covered[present] / length[present]
        return base + self.skeleton_weight * (1.0 - recall.mean())
