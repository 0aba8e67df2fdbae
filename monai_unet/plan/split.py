"""Which cases train and which validate: the dataset's own validation list, a contiguous fold of up
to 5 over groups of cases (a patient's time points stay together), or every case on both sides (``fold="all"``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from monai_unet.plan.dataset import DatasetError, PlanDataset

__all__ = ["choose_split"]


def choose_split(dataset: PlanDataset, fold: int | str) -> dict[str, Any]:
    """The training and validation case names: the dataset's own validation list, or fold ``fold`` of up to 5, or
    with ``fold="all"`` every case on both sides (nnU-Net's "fold all": for one-case datasets and final weights).

    Folds are contiguous blocks of the sorted groups (cases of one patient share a group), so neighbouring names
    (one patient's phases, one video's frames) stay on one side. Deterministic: no random draw is involved.

    Raises:
        DatasetError: ``fold`` out of range, or a dataset with a single group and no validation list.
    """
    if fold == "all":
        names = [c.name for c in dataset.training] + [c.name for c in dataset.validation]
        return {
            "mode": "all cases, validated on themselves (fold 'all': the validation metric is not held out)",
            "fold": "all",
            "num_folds": 0,
            "training": names,
            "validation": names,
        }
    if dataset.validation:
        if fold != 0:
            raise DatasetError(
                f"{dataset.source}: the dataset has its own validation list, so there is only fold 0 "
                f"(got --fold {fold})"
            )
        return {
            "mode": "dataset validation list",
            "fold": 0,
            "num_folds": 1,
            "training": [c.name for c in dataset.training],
            "validation": [c.name for c in dataset.validation],
        }
    groups = sorted({c.group for c in dataset.training})
    if len(groups) < 2:
        raise DatasetError(
            f"{dataset.source}: all {len(dataset.training)} training cases form one group ({groups[0]}), so no case "
            "can be held out for validation; add a 'validation' list, give the cases distinct names or groups, or "
            "plan with --fold all (train and validate on every case)"
        )
    num_folds = min(5, len(groups))
    if not 0 <= fold < num_folds:
        raise DatasetError(f"--fold must be between 0 and {num_folds - 1} for this dataset ({len(groups)} groups)")
    bounds = np.linspace(0, len(groups), num_folds + 1).round().astype(int)
    held = set(groups[bounds[fold] : bounds[fold + 1]])
    return {
        "mode": f"fold {fold} of {num_folds} (contiguous blocks of sorted groups)",
        "fold": fold,
        "num_folds": num_folds,
        "training": [c.name for c in dataset.training if c.group not in held],
        "validation": [c.name for c in dataset.training if c.group in held],
    }
