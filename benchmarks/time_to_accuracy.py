"""Time to accuracy of the planned bundles and the stock recipes: a table and one PNG plot per run.

``python -m benchmarks.time_to_accuracy [COMPARISON.json ...] [--output-dir benchmarks/results]``

Reads the ``comparison.json`` files that :mod:`benchmarks.planned_vs_stock` writes (default: every
``outputs/planned_vs_stock/*/comparison.json``; stored copies in ``benchmarks/results`` may be named instead), each
holding the validation metric against wall-clock seconds of both runs (ours: mean foreground Dice of each validation
in the run folder's ``validation_history.csv``, on the cases' own grids, as the network gives it and as the bundle
segments, with the largest component kept for the classes where the run chose that; stock: its script's per-epoch
validation Dice). Writes ``time_to_accuracy.md`` (per run: the stock recipe's final and best validation, when each
side first reached them, and the ratios, :func:`summarise`) and ``time_to_accuracy_<run>.png`` (the curves,
:func:`benchmarks.plots.line_plot`).

The curves are each run's own validation during training, so they are comparable only as far as the two validations
are: same cases, same metric, but the stock scripts validate on their own preprocessing grid and without
post-processing (the stock recipes have none). The final, comparable scores are the ``metrics.json`` of each side
(``benchmarks/scoring.py``), ours with its post-processing, which is why the post-processed curve is the one that
leads to ours' final score.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.plots import line_plot

ROOT = Path(__file__).resolve().parents[1]


#: Our two curves: the network's validation, and the same validation as the bundle segments (the post-processing
#: the run chose at its end applied; only where the run recorded the largest-component Dice per class).
OURS_CURVES = {"network": "val_mean_dice", "postprocessed": "val_mean_dice_postprocessed"}


def seconds_to_reach(curve: list[dict], target: float, key: str = "val_mean_dice") -> float | None:
    """The first validation time (s) at which ``curve``'s ``key`` reaches ``target``, or None (also where the curve
    does not record ``key``)."""
    for row in curve:
        if key in row and row[key] >= target:
            return row["seconds"]
    return None


def _ratio(ours: float | None, stock: float | None) -> float | None:
    return None if ours is None or not stock else ours / stock


def summarise(comparison: dict) -> dict:
    """Time to accuracy of one paired run, against two targets of the stock recipe's validation curve.

    Targets: the stock's ``final`` validation (its last: the issue's target, "ours reaches the stock recipe's final
    validation metric in at most half its time") and its ``best``. For each: the seconds the stock first reached it
    and the length of its run (its last validation's time); the seconds ours first reached it, on the network's
    curve and as the bundle segments (post-processing applied); and the ratios. ``ratio_*_to_first`` divides by the
    stock's first reaching of the target, the stricter reading; ``ratio_*_to_run`` by the stock's run length.
    """
    curves = {side: comparison.get(f"{side}_curve") or [] for side in ("ours", "stock")}
    stock = curves["stock"]
    row: dict = {"task": comparison["task"], "fold": comparison["fold"], "minutes": budgets(comparison)}
    best = max(curves["ours"], key=lambda r: r["val_mean_dice"], default=None)
    row["ours_best"] = None if best is None else (best["val_mean_dice"], best["seconds"])
    if not stock:
        return row
    run_s = stock[-1]["seconds"]
    targets = {"final": stock[-1]["val_mean_dice"], "best": max(r["val_mean_dice"] for r in stock)}
    for name, target in targets.items():
        first = seconds_to_reach(stock, target)
        row[f"stock_{name}"] = (target, first)
        for curve, key in OURS_CURVES.items():
            reached = seconds_to_reach(curves["ours"], target, key)
            row[f"ours_{curve}_to_stock_{name}_s"] = reached
            row[f"ratio_{curve}_{name}_to_first"] = _ratio(reached, first)
            row[f"ratio_{curve}_{name}_to_run"] = _ratio(reached, run_s)
    row["stock_run_s"] = run_s
    return row


def budgets(comparison: dict) -> dict[str, float]:
    """Each side's training budget (minutes): ``stock_minutes`` where a run was paired with a stored stock run
    (``planned_vs_stock --stock-from``), ``ours_minutes`` in the comparisons assembled by hand before that option."""
    return {
        "ours": comparison.get("ours_minutes", comparison["minutes"]),
        "stock": comparison.get("stock_minutes", comparison["minutes"]),
    }


def plot(comparison: dict, path: Path) -> None:
    """The validation curves (Dice against minutes) as a PNG: the stock's, ours as the network gives it and,
    where recorded, ours post-processed."""
    curves = {side: comparison.get(f"{side}_curve") or [] for side in ("ours", "stock")}
    minutes = budgets(comparison)
    t_max = max([r["seconds"] for c in curves.values() for r in c] + [60.0 * m for m in minutes.values()])
    lines = {
        f"{side}: validation mean Dice": [(r["seconds"] / 60, r["val_mean_dice"]) for r in c]
        for side, c in curves.items()
    }
    postprocessed = [
        (r["seconds"] / 60, r[OURS_CURVES["postprocessed"]])
        for r in curves["ours"]
        if OURS_CURVES["postprocessed"] in r
    ]
    if postprocessed:
        lines["ours, post-processed"] = postprocessed
    line_plot(
        lines,
        t_max / 60,
        "minutes (wall clock)",
        f"{comparison['task']} fold {comparison['fold']}, "
        + (
            f"{minutes['ours']:g} min"
            if minutes["ours"] == minutes["stock"]
            else f"ours {minutes['ours']:g} min, stock {minutes['stock']:g} min"
        ),
        path,
    )


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "not reached"
    if isinstance(value, tuple):
        return f"{value[0]:.{digits}f} at {value[1]:.0f} s"
    return f"{value:.0f} s" if digits == 0 else f"{value:.2f}"


def _reached(row: dict, target: str) -> str:
    """Seconds ours took to reach the stock's ``target`` validation: the network's, the post-processed."""
    return " / ".join(_cell(row[f"ours_{curve}_to_stock_{target}_s"], 0) for curve in OURS_CURVES)


def _pair(row: dict, ratio: str) -> str:
    """The network's and the post-processed ``ratio`` (e.g. ``final_to_first``)."""
    return " / ".join(_cell(row[f"ratio_{curve}_{ratio}"]) for curve in OURS_CURVES)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparisons", nargs="*", type=Path)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    paths = args.comparisons or sorted((ROOT / "outputs" / "planned_vs_stock").glob("*/comparison.json"))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "| run | ours: best validation (network) | stock: final validation (first reached) | ours to reach it "
        "(network / post-processed) | ratio to the stock's first reaching, then to its whole run (each network / "
        "post-processed) | stock: best validation (first reached) | ours to reach it | ratio to the stock's first "
        "reaching |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for path in paths:
        comparison = json.loads(path.read_text())
        row = summarise(comparison)
        rows.append(row)
        name = path.parent.name if path.name == "comparison.json" else path.stem.removeprefix("planned_vs_stock_")
        plot(comparison, args.output_dir / f"time_to_accuracy_{name}.png")
        if "stock_final" not in row:
            continue
        lines.append(
            f"| {name} | {_cell(row['ours_best'])} | {_cell(row['stock_final'])} | {_reached(row, 'final')} | "
            f"{_pair(row, 'final_to_first')} / {_pair(row, 'final_to_run')} | {_cell(row['stock_best'])} | "
            f"{_reached(row, 'best')} | {_pair(row, 'best_to_first')} |"
        )
    (args.output_dir / "time_to_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
