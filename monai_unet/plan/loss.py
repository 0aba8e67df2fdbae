"""The planner's loss: Dice + cross-entropy, plus the recall of their skeleton for thin 2D classes, optionally
deeply supervised (``monai-unet plan --deep-supervision``).

Measured (``benchmarks/RESULTS.md``): on ISBI 2012 membranes (6.8 pixels thick) the skeleton term won the Rand error
against the stock recipe over two seeds; on ACDC in 3D (myocardium 4.7 voxels) it lowered the mean Dice, so 3D plans
keep Dice + cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai_unet.plan.fingerprint import Fingerprint
from monai_unet.plan.geometry import MIN_THICKNESS_VOXELS, thin_classes

__all__ = ["SKELETON_WEIGHT", "choose_loss", "loss_config"]

SKELETON_WEIGHT = 1.0
DEEP_SUPERVISION = (
    " Deep supervision: the loss is taken at every decoder resolution but the two lowest, against the label resized by "
    "nearest neighbour, weighted 1, 1/2, 1/4, ... from the full resolution down."
)


_PLAIN = "Dice + cross-entropy (batch Dice, background left out of the Dice term)"


def _dice_ce() -> dict[str, Any]:
    """MONAI's Dice + cross-entropy as plans.json records it: batch Dice, background left out of the Dice term."""
    return {"name": "DiceCELoss", "include_background": False, "batch": True}


def choose_loss(
    fp: Fingerprint,
    spacing: Sequence[float] | None,
    scale: float,
    names: Sequence[str],
    deep_supervision: bool = False,
    ignore_index: int | None = None,
) -> tuple[dict[str, Any], str]:
    """The loss for a plan on the grid ``spacing`` (3D, mm) or ``scale`` (2D pictures), with its reason; ``names``
    are the class names, background first; ``deep_supervision``: scored at every decoder resolution but the two
    lowest (the network's heads, :func:`~monai_unet.plan.ladder.deep_supervision_heads`); ``ignore_index``: the
    training label of unannotated voxels (the index past the classes), which the loss leaves out."""
    if ignore_index is not None:  # sparse annotation: no skeleton of a class whose extent is unknown
        loss = _dice_ce()
        reason = (
            f"{_PLAIN}, voxels under the ignore label left out of both terms (the 3D U-Net's sparse annotation; no "
            "skeleton term: a class's skeleton is not known where it is not annotated)."
        )
    else:
        loss, reason = _loss_terms(fp, spacing, scale, names)
    loss["deep_supervision"] = deep_supervision
    loss["ignore_index"] = ignore_index
    return loss, reason + (DEEP_SUPERVISION if deep_supervision else "")


def _loss_terms(
    fp: Fingerprint, spacing: Sequence[float] | None, scale: float, names: Sequence[str]
) -> tuple[dict[str, Any], str]:
    """Dice + cross-entropy, plus the skeleton recall where the plan's classes call for it; the reason."""
    loss = _dice_ce()
    thin = thin_classes(fp, spacing, scale)
    if not thin:
        return loss, f"{_PLAIN}; no class is thin."
    if fp.spatial_dims == 3:  # measured: ACDC's myocardium with the term lost (benchmarks/RESULTS.md)
        return loss, (
            f"{_PLAIN}. The thin classes ({', '.join(names[k] for k in sorted(thin))}) get no skeleton-recall term in "
            "3D: on ACDC it lowered the mean Dice (0.736 against 0.779 without it, same patch)."
        )
    loss.update(
        name="DiceCESkeletonRecallLoss",
        skeleton_classes=sorted(thin),
        skeleton_weight=SKELETON_WEIGHT,
    )
    listed = ", ".join(f"{names[k]} ({t:.1f} voxels)" for k, t in sorted(thin.items()))
    return loss, (
        f"Dice + cross-entropy plus the recall of the skeleton of the thin classes, {listed} thick (10th percentile, "
        f"under {MIN_THICKNESS_VOXELS:g}): a gap of one voxel costs such a class little Dice but breaks it apart. "
        "Validation also measures the Rand error of the regions each separates, which test-time mirroring must not "
        "raise."
    )


def loss_config(loss: dict[str, Any]) -> dict[str, Any]:
    """The bundle config of a planned ``loss`` (plans.json: loss): MONAI's ``DiceCELoss``, or ours with the skeleton
    recall of the thin classes; with deep supervision, inside MONAI's ``DeepSupervisionLoss``, which scores the
    network's list of outputs in training (and its one output otherwise). The calibration times the step with the
    same config."""
    if loss.get("deep_supervision", False):
        return {
            "_target_": "DeepSupervisionLoss",
            "loss": _term_config(loss),
            "weight_mode": "exp",
            "_desc_": "each decoder resolution's logits against the label resized to it (plans.json: reasons.loss)",
        }
    return _term_config(loss)


def _term_config(loss: dict[str, Any]) -> dict[str, Any]:
    common = {"include_background": loss["include_background"], "batch": loss["batch"]}
    if loss["name"] == "DiceCELoss":
        ignore_index = loss.get("ignore_index")  # the sparse-annotation loss: MONAI's with those voxels masked out
        target = (
            {"_target_": "DiceCELoss"}
            if ignore_index is None
            else {"_target_": "monai_unet.losses.IgnoreLabelDiceCELoss", "ignore_index": ignore_index}
        )
        return {**target, "to_onehot_y": True, "softmax": True, **common}
    return {
        "_target_": "monai_unet.losses.DiceCESkeletonRecallLoss",
        "skeleton_classes": loss["skeleton_classes"],
        "skeleton_weight": loss["skeleton_weight"],
        **common,
        "_desc_": "Dice + cross-entropy + recall of the thin classes' skeletons (plans.json: reasons.loss)",
    }
