"""One scoring code for ``monai-unet plan``'s bundles and the stock-MONAI baselines: Dice and HD95 per case and class.

``python -m benchmarks.scoring --pred-dir D --split split.json --classes '{"1": "RV", "2": "MYO", "3": "LV"}'
[--truth-values '{"1": [1]}'] [--subset validation] [--voxels] [--output scores.json]``

Predictions are label maps of class indices named ``<case>_seg.<ext>`` (``.nii.gz``, ``.png``, ...), where ``<case>``
is ``monai_unet.io.naming.case_name(item["image"])`` of a split item; each is compared with that item's ``label``
file. Both must lie on the same grid (same shape; for 3D also the same spacing, origin and direction); they are read
with ``monai_unet.io.read_image_file``, so the voxel spacing comes from the files.

Ground truths keep their original values. ``classes`` maps a predicted class index to a name, and optionally to the
ground-truth values that make up that class (default: the value equal to the index):

- ``{1: "RV", 2: "MYO", 3: "LV"}``: prediction == 1 against truth == 1, and so on;
- ``{1: "membrane"}`` with ``truth_values={1: [0]}`` (ISBI 2012: membrane = 0, cell = 255);
- ``{1: "whole tumour"}`` with ``truth_values={1: [1, 2, 3, 4]}`` (BRATS: any tumour label);
- the same written inline: ``{1: {"name": "membrane", "values": [0]}}`` or ``{1: ["membrane", [0]]}``;
- a region, a union of predicted classes too: ``{1: {"name": "tumour core", "values": [1, 3, 4], "predicted": [1, 3,
  4]}}`` (BraTS's regions scored from a four-label prediction).

Per case and class: Dice (MONAI ``compute_dice``) and HD95 (MONAI ``compute_hausdorff_distance``, symmetric, 95th
percentile of the surface distances, ``spacing=`` the file's spacing): in mm for 3D files, in pixels for 2D files
(PNG/JPEG carry no physical spacing), in voxels with ``spacing=False``. The unit is reported as ``hd95_unit``.
Both masks empty: Dice 1, HD95 0. Exactly one empty: Dice 0 and HD95 undefined (``null``); the means of HD95 leave
those cases out. ``empty`` counts per class the cases with both masks empty, with only the prediction empty and with
only the ground truth empty; a case's row names its empty side per class (``"empty": {"RV": "prediction"}``).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from monai_unet.io import read_image_file
from monai_unet.io.naming import case_name

__all__ = ["find_prediction", "finite_json", "load_split", "normalise_classes", "score_cases", "score_split"]

#: Suffix after the case name of a prediction file.
PREDICTION_POSTFIX = "_seg"


def normalise_classes(
    classes: Mapping, truth_values: Mapping | None = None
) -> list[tuple[int, str, tuple[float, ...], tuple[int, ...]]]:
    """``(class index, name, ground-truth values, predicted indices)`` per class, sorted by index; JSON string keys
    are accepted. The predicted indices are ``(index,)`` unless a mapping names them (``"predicted"``)."""
    overrides = {int(k): v for k, v in (truth_values or {}).items()}
    out = []
    for key, spec in classes.items():
        index = int(key)
        predicted = (index,)
        if isinstance(spec, str):
            name, values = spec, [index]
        elif isinstance(spec, Mapping):
            name, values = str(spec["name"]), spec.get("values", [index])
            predicted = tuple(int(v) for v in spec.get("predicted", predicted))
        elif isinstance(spec, Sequence) and len(spec) == 2:
            name, values = str(spec[0]), spec[1]
        else:
            raise ValueError(f"class {key}: expected a name, {{'name', 'values'}} or [name, values], got {spec!r}")
        values = overrides.get(index, values)
        values = [values] if isinstance(values, int | float) else list(values)
        if not values:
            raise ValueError(f"class {key} ({name}): no ground-truth values")
        out.append((index, name, tuple(int(v) if float(v).is_integer() else float(v) for v in values), predicted))
    names = [name for _, name, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names}")
    return sorted(out)


def _same_grid(pred, truth, pred_path, truth_path) -> None:
    if pred.array.shape != truth.array.shape:
        raise ValueError(
            f"{pred_path}: shape {pred.array.shape} differs from the ground truth's {truth.array.shape} "
            f"({truth_path}); predictions must be written on the input's own grid"
        )
    if pred.spatial_ndim == 3:
        for what in ("spacing", "origin", "direction"):
            a, b = getattr(pred.grid, what), getattr(truth.grid, what)
            if not np.allclose(a, b, rtol=1e-4, atol=1e-3):
                raise ValueError(
                    f"{pred_path}: {what} {np.round(a, 4).tolist()} differs from the ground truth's "
                    f"{np.round(b, 4).tolist()} ({truth_path}); predictions must be on the input's own grid"
                )


def _case_of(prediction: Path) -> str:
    name = case_name(prediction)
    return name[: -len(PREDICTION_POSTFIX)] if name.endswith(PREDICTION_POSTFIX) else name


def _dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float(compute_dice(pred, truth, include_background=True, ignore_empty=False).item())


def _hd95(pred: torch.Tensor, truth: torch.Tensor, spacing: list[float] | None) -> float:
    with warnings.catch_warnings():  # MONAI's own deprecation notice inside get_mask_edges
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(pred, truth, include_background=True, percentile=95, spacing=spacing)
    return float(value.item())


def _score_one(
    pred_path: Path, truth_path: Path, classes: list[tuple[int, str, tuple[float, ...], tuple[int, ...]]], spacing: bool
) -> tuple[dict, str]:
    pred, truth = read_image_file(pred_path), read_image_file(truth_path)
    if pred.array.ndim != pred.spatial_ndim or truth.array.ndim != truth.spatial_ndim:
        raise ValueError(f"{pred_path} / {truth_path}: label maps must have one component per pixel")
    _same_grid(pred, truth, pred_path, truth_path)
    if pred.spatial_ndim == 2:
        unit, voxel = "pixels", None
    elif spacing:
        unit, voxel = "mm", list(truth.grid.spacing)
    else:
        unit, voxel = "voxels", None
    row: dict = {}
    for _, name, values, predicted in classes:
        p = np.isin(pred.array, predicted)
        t = np.isin(truth.array, values)
        p_any, t_any = bool(p.any()), bool(t.any())
        if not p_any and not t_any:
            dice, hd95, empty = 1.0, 0.0, "both"
        elif not p_any or not t_any:
            dice, hd95, empty = 0.0, None, "prediction" if not p_any else "truth"
        else:
            p_t, t_t = (torch.as_tensor(m)[None, None] for m in (p, t))
            dice, hd95, empty = _dice(p_t, t_t), _hd95(p_t, t_t, voxel), None
        row[f"dice_{name}"] = dice
        row[f"hd95_{name}"] = hd95
        if empty:
            row.setdefault("empty", {})[name] = empty
    return row, unit


def score_cases(
    pairs: Iterable[Sequence],
    classes: Mapping,
    spacing: bool = True,
    truth_values: Mapping | None = None,
) -> dict:
    """Dice and HD95 per case and class, and their means.

    Args:
        pairs: ``(prediction file, ground-truth file)`` or ``(case name, prediction file, ground-truth file)``; the
            case name defaults to the prediction's file name without its image suffix and ``_seg``.
        classes: class index in the prediction → name, or → ``{"name", "values"}`` / ``[name, values]`` naming
            the ground-truth values of that class (default: the value equal to the index).
        spacing: HD95 in mm from the files' spacing (3D); False: in voxels. 2D files are always in pixels.
        truth_values: class index → ground-truth values, overriding those in ``classes``.

    Returns:
        ``{"per_case": [...], "mean": {"dice_<name>", "hd95_<name>"}, "mean_dice", "hd95_unit", "classes",
        "empty", "n_cases"}``. ``mean_dice`` is the mean over cases and over the classes whose index is not 0;
        HD95 means leave out the cases where it is undefined (``null``: exactly one of the two masks empty).
    """
    spec = normalise_classes(classes, truth_values)
    per_case, units = [], set()
    for pair in pairs:
        if len(pair) == 3:
            name, pred_path, truth_path = str(pair[0]), Path(pair[1]), Path(pair[2])
        else:
            pred_path, truth_path = Path(pair[0]), Path(pair[1])
            name = _case_of(pred_path)
        row, unit = _score_one(pred_path, truth_path, spec, spacing)
        units.add(unit)
        per_case.append({"case": name, "prediction": str(pred_path), "truth": str(truth_path), **row})
    if not per_case:
        raise ValueError("no cases to score")
    if len(units) > 1:
        raise ValueError(f"cases mix units of HD95 ({sorted(units)}): score 2D and 3D data separately")
    mean, empty = {}, {}
    for _, name, _, _ in spec:
        for metric in ("dice", "hd95"):
            values = [row[f"{metric}_{name}"] for row in per_case if row[f"{metric}_{name}"] is not None]
            mean[f"{metric}_{name}"] = float(np.mean(values)) if values else None
        kinds = [row.get("empty", {}).get(name) for row in per_case]
        empty[name] = {
            "both_empty": kinds.count("both"),
            "only_prediction_empty": kinds.count("prediction"),
            "only_truth_empty": kinds.count("truth"),
            "hd95_undefined": kinds.count("prediction") + kinds.count("truth"),
        }
    foreground = [name for index, name, _, _ in spec if index != 0] or [name for _, name, _, _ in spec]
    mean_dice = float(np.mean([row[f"dice_{name}"] for row in per_case for name in foreground]))
    return {
        "n_cases": len(per_case),
        "hd95_unit": units.pop(),
        "classes": {
            str(index): {
                "name": name,
                "truth_values": list(values),
                **({"predicted": list(predicted)} if predicted != (index,) else {}),
            }
            for index, name, values, predicted in spec
        },
        "mean_dice": mean_dice,
        "mean": mean,
        "empty": empty,
        "per_case": per_case,
    }


def find_prediction(pred_dir: Path, case: str) -> Path | None:
    """``pred_dir/<case>_seg.<ext>``; None when there is none, ValueError when there are several."""
    found = sorted(glob.glob(os.path.join(glob.escape(str(pred_dir)), glob.escape(case + PREDICTION_POSTFIX) + ".*")))
    found = [Path(f) for f in found if case_name(f) == case + PREDICTION_POSTFIX]
    if len(found) > 1:
        raise ValueError(f"several predictions for case {case}: {[str(f) for f in found]}")
    return found[0] if found else None


def score_split(
    pred_dir: str | os.PathLike,
    split: Mapping,
    classes: Mapping,
    subset: str = "validation",
    spacing: bool = True,
    truth_values: Mapping | None = None,
) -> dict:
    """Score ``pred_dir/<case>_seg.*`` against the labels of ``split[subset]``; a missing prediction is an error."""
    pairs, missing = [], []
    for item in split[subset]:
        case = case_name(item["image"])
        found = find_prediction(Path(pred_dir), case)
        if found is None:
            missing.append(case)
        else:
            pairs.append((case, found, item["label"]))
    if missing:
        raise FileNotFoundError(
            f"{pred_dir}: no <case>{PREDICTION_POSTFIX}.* prediction for {len(missing)} cases: " + ", ".join(missing)
        )
    return score_cases(pairs, classes, spacing=spacing, truth_values=truth_values)


def load_split(path: str | os.PathLike) -> dict[str, list[dict]]:
    """Read a split file ``{"training": [{"image": path or [paths], "label": path}, ...], "validation": [...]}``.

    Paths should be absolute; relative ones are taken relative to the split file's folder. Other keys are kept.
    """
    path = Path(path)
    split = json.loads(path.read_text())
    for subset in ("training", "validation"):
        if not isinstance(split.get(subset), list):
            raise ValueError(f"{path}: a split needs a {subset!r} list of {{'image', 'label'}} items")

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return str((path.parent / value).resolve()) if not Path(value).is_absolute() else str(value)

    for subset, items in split.items():
        if isinstance(items, list):
            split[subset] = [
                {k: resolve(v) if k in ("image", "label") else v for k, v in item.items()} for item in items
            ]
    return split


def finite_json(value):
    """NaN/inf → None, recursively, so that the JSON is strict."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--pred-dir", type=Path, required=True, help="folder of <case>_seg.<ext> label maps")
    parser.add_argument("--split", type=Path, required=True, help='split JSON {"training": [...], "validation": [...]}')
    parser.add_argument(
        "--classes", required=True, help='JSON: {"1": "RV", ...} or {"1": {"name": .., "values": [..]}}'
    )
    parser.add_argument("--truth-values", default=None, help='JSON: {"1": [0]}: ground-truth values per class')
    parser.add_argument("--subset", default="validation", help="which list of the split to score (default %(default)s)")
    parser.add_argument("--voxels", action="store_true", help="HD95 in voxels instead of mm (3D)")
    parser.add_argument("--per-case", action=argparse.BooleanOptionalAction, default=True, help="print per-case rows")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    split = load_split(args.split)
    scores = score_split(
        args.pred_dir,
        split,
        json.loads(args.classes),
        subset=args.subset,
        spacing=not args.voxels,
        truth_values=json.loads(args.truth_values) if args.truth_values else None,
    )
    scores = finite_json(scores)
    if args.output:
        args.output.write_text(json.dumps(scores, indent=2))
    if not args.per_case:
        scores = {k: v for k, v in scores.items() if k != "per_case"}
    json.dump(scores, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
