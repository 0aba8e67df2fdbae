"""What training leaves in the plans: iterations, epochs and seconds spent, and the post-processing and test-time
mirroring it chose."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from monai_unet.errors import InputError
from monai_unet.io.atomic import atomic_path
from monai_unet.plan.recipe import Plan

__all__ = ["MIN_GAIN", "history_rows", "mirroring_decision", "read_plan", "read_plans", "record_training"]

logger = logging.getLogger(__name__)

#: Mean validation Dice a class must gain from keeping its largest component for the step to be kept; also the gain
#: in the selection metric (Dice, or Rand error) test-time mirroring must bring to be turned on.
MIN_GAIN = 0.002


def _plans_path(bundle_root: str | Path) -> Path:
    return Path(bundle_root) / "configs" / "plans.json"


def read_plans(bundle_root: str | Path) -> dict[str, Any]:
    """``configs/plans.json`` of a planned bundle.

    Raises:
        InputError: the file is missing or not JSON (the message names it).
    """
    path = _plans_path(bundle_root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing; this bundle was not written by monai-unet plan") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: is not valid JSON ({error})") from None


def read_plan(bundle_root: str | Path) -> Plan:
    """The :class:`~monai_unet.plan.recipe.Plan` a planned bundle was written from (``plans.json``: ``plan``), e.g.
    to write the bundle again with :func:`~monai_unet.plan.bundle.write_bundle` by a newer planner."""
    return Plan(**read_plans(bundle_root)["plan"])


def _best_row(history) -> dict[str, float] | None:
    rows = [row for row in history.history if row.get("epoch") == history.best_epoch]
    return rows[-1] if rows else None


def mirroring_decision(history, mirroring) -> dict[str, Any]:
    """The test-time mirroring decision: on when the best model's metric with mirroring beat its plain validation by
    :data:`MIN_GAIN` (in the direction the history's key metric improves) and no guard metric (lower is better, see
    :func:`monai_unet.plan.configs.topology_guards`) rose above its plain value by :data:`MIN_GAIN` or more.

    Args:
        history: a :class:`monai_unet.handlers.ValidationHistory` (its best row holds the guards' plain values).
        mirroring: a :class:`monai_unet.handlers.MirroringCheck`, run here; ``None``: mirroring stays off.
    """
    measured = mirroring.run() if mirroring is not None else None
    if measured is None:
        return {"tta_axes": [], "mirroring": {"reason": "not checked (no axes planned, or no validation ran)"}}
    plain = float(history.best_metric)
    gain = measured["metric"] - plain if history.higher_is_better else plain - measured["metric"]
    best = _best_row(history) or {}
    # a guard the best row lacks (a run resumed from a history older than the guard) cannot be compared
    guards = {name: value for name, value in measured["guards"].items() if name in best}
    rises = {name: round(value - best[name], 5) for name, value in guards.items()}
    on = gain >= MIN_GAIN and all(rise < MIN_GAIN for rise in rises.values())
    guard_text = "".join(f", {name} {best[name]:.4f} plain, {value:.4f} mirrored" for name, value in guards.items())
    return {
        "tta_axes": measured["axes"] if on else [],
        "mirroring": {
            **measured,
            "plain_metric": plain,
            "gain": round(gain, 5),
            "guard_rises": rises,
            "reason": f"{history.key_metric} {plain:.4f} plain, {measured['metric']:.4f} mirrored along axes "
            f"{measured['axes']}{guard_text} on the validation cases: {'on' if on else 'off'} (it must gain "
            f"{MIN_GAIN}" + (" and raise no guard by as much" if rises else "") + ")",
        },
    }


def record_training(bundle_root: str | Path, history, output_dir: str | Path, mirroring=None) -> dict[str, Any]:
    """Write the training summary and the post-processing decision into the run folder's ``training_record.json``
    and, when the run's weights were promoted to the bundle's ``models/model.pt``, into ``configs/plans.json``
    (both atomically): the bundle's post-processing always belongs to its weights.

    Post-processing: keeping only the largest connected component of class ``c`` is chosen when, at the best
    validation, it raised that class's mean Dice by at least :data:`MIN_GAIN` (the ``val_dice_lcc_<c>`` and
    ``val_dice_<c>`` metrics of :class:`monai_unet.handlers.ComponentChoice`). Test-time mirroring (``tta_axes``,
    read by the inference and evaluation configs) is turned on when the best model, validated again with it by
    ``mirroring``, gained at least :data:`MIN_GAIN` in the metric that selected it and raised none of its guard
    metrics (a thin class's Rand error) by as much.

    Args:
        bundle_root: the planned bundle.
        history: the run's :class:`monai_unet.handlers.ValidationHistory`.
        output_dir: the run folder holding ``training_summary.json``.
        mirroring: the run's :class:`monai_unet.handlers.MirroringCheck`, run here; ``None``: mirroring stays off.

    Returns:
        The updated plans.
    """
    plans = read_plans(bundle_root)
    summary_path = Path(output_dir) / "training_summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    best = _best_row(history)
    summary.update({"best_epoch": history.best_epoch, "best_metric": history.best_metric, "best_row": best})
    keep, gains = [], {}
    num_classes = int(plans["plan"]["num_classes"])
    if best is not None:
        for c in range(1, num_classes):
            raw, kept = best.get(f"val_dice_{c}"), best.get(f"val_dice_lcc_{c}")
            if raw is None or kept is None:
                continue
            gains[str(c)] = round(kept - raw, 5)
            if kept - raw >= MIN_GAIN:
                keep.append(c)
    plans["training"] = summary
    plans["postprocessing"] = {
        "keep_largest_labels": keep,
        "decided": best is not None,
        "dice_gain_per_class": gains,
        "reason": (
            f"kept for the classes whose validation Dice rose by at least {MIN_GAIN} at the best epoch"
            if best is not None
            else "no validation ran; nothing is post-processed"
        ),
        **mirroring_decision(history, mirroring),
    }
    paths = [Path(output_dir) / "training_record.json"]
    record = {key: plans[key] for key in ("training", "postprocessing")}
    if history.promoting:
        paths.append(_plans_path(bundle_root))
    for path in paths:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(record if path == paths[0] else plans, indent=4) + "\n", encoding="utf-8")
    logger.info("recorded training (%s) and post-processing %s in %s", summary, keep, paths)
    return plans


def history_rows(csv_path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``validation_history.csv`` as floats (for reports)."""
    with open(csv_path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
