"""Time to accuracy of the planned bundles and the stock recipes: a table and one PNG plot per run.

``python -m benchmarks.time_to_accuracy [COMPARISON.json ...] [--output-dir benchmarks/results]``

Reads the ``comparison.json`` files that :mod:`benchmarks.planned_vs_stock` writes (default: every
``outputs/planned_vs_stock/*/comparison.json``), each holding the validation metric against wall-clock seconds of
both runs (ours: mean foreground Dice of each validation in the run folder's ``validation_history.csv``, on the cases'
own grids; stock: its script's per-epoch validation Dice). Writes ``time_to_accuracy.md`` (per run: each side's
first and best validation, the seconds each needed to reach the stock recipe's best, and their ratio) and
``time_to_accuracy_<run>.png`` (both curves, :func:`benchmarks.plots.line_plot`).

The curves are each run's own validation during training, so they are comparable only as far as the two validations
are: same cases, same metric, but the stock scripts validate on their own preprocessing grid and without
post-processing. The final, comparable scores are the ``metrics.json`` of each side (``benchmarks/scoring.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.plots import line_plot

ROOT = Path(__file__).resolve().parents[1]


def seconds_to_reach(curve: list[dict], target: float) -> float | None:
    """The first validation time (s) at which ``curve`` reaches ``target``, or None."""
    for row in curve:
        if row["val_mean_dice"] >= target:
            return row["seconds"]
    return None


def summarise(comparison: dict) -> dict:
    """Per side: best validation and its time; the seconds each side needed to reach the stock recipe's best."""
    curves = {side: comparison.get(f"{side}_curve") or [] for side in ("ours", "stock")}
    target = max((r["val_mean_dice"] for r in curves["stock"]), default=None)
    row: dict = {"task": comparison["task"], "fold": comparison["fold"], "minutes": budgets(comparison)}
    for side, curve in curves.items():
        best = max(curve, key=lambda r: r["val_mean_dice"], default=None)
        row[f"{side}_best"] = None if best is None else (best["val_mean_dice"], best["seconds"])
        row[f"{side}_to_stock_best_s"] = None if target is None else seconds_to_reach(curve, target)
    ours, stock = row["ours_to_stock_best_s"], row["stock_to_stock_best_s"]
    row["ratio"] = None if ours is None or not stock else ours / stock
    return row


def budgets(comparison: dict) -> dict[str, float]:
    """Each side's training budget (minutes): ``stock_minutes`` where a run was paired with a stored stock run
    (``planned_vs_stock --stock-from``), ``ours_minutes`` in the comparisons assembled by hand before that option."""
    return {
        "ours": comparison.get("ours_minutes", comparison["minutes"]),
        "stock": comparison.get("stock_minutes", comparison["minutes"]),
    }


def plot(comparison: dict, path: Path) -> None:
    """Both validation curves (Dice against minutes) as a PNG."""
    curves = {side: comparison.get(f"{side}_curve") or [] for side in ("ours", "stock")}
    minutes = budgets(comparison)
    t_max = max([r["seconds"] for c in curves.values() for r in c] + [60.0 * m for m in minutes.values()])
    line_plot(
        {
            f"{side}: validation mean Dice": [(r["seconds"] / 60, r["val_mean_dice"]) for r in c]
            for side, c in curves.items()
        },
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


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparisons", nargs="*", type=Path)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    paths = args.comparisons or sorted((ROOT / "outputs" / "planned_vs_stock").glob("*/comparison.json"))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "| run | ours: best validation | stock: best validation | ours to reach the stock's best | stock to reach it "
        "| ratio (ours / stock) |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for path in paths:
        comparison = json.loads(path.read_text())
        row = summarise(comparison)
        rows.append(row)
        name = path.parent.name
        plot(comparison, args.output_dir / f"time_to_accuracy_{name}.png")
        lines.append(
            f"| {name} | {_cell(row['ours_best'])} | {_cell(row['stock_best'])} | "
            f"{_cell(row['ours_to_stock_best_s'], 0)} | {_cell(row['stock_to_stock_best_s'], 0)} | "
            f"{_cell(row['ratio'])} |"
        )
    (args.output_dir / "time_to_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
