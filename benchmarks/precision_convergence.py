"""Convergence in bfloat16 against float32: the same planned bundle trained twice, same seed, same budget.

``python -m benchmarks.precision_convergence BF16_DIR FP32_DIR [--output-dir benchmarks/results]``

Each DIR is a :mod:`benchmarks.planned_vs_stock` output folder; the second trains a copy of the first's bundle with
``--reuse-plan --train-override precision=fp32``, so the plan (patch, batch, network, epoch length, seed) is one and
the runs differ only in precision. Writes ``precision_convergence_<task>.png`` (the validation selection metric
against training iterations, both runs: convergence per step) and prints a Markdown table: iterations done in the
budget, seconds per iteration, best validation, and the held-out scores of each run's best model
(:mod:`benchmarks.scoring`, the same code for both).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.plots import line_plot

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """One run folder: the selection metric, its validation curve ``[(iterations done, value)]``, the training
    record, and the held-out scores of the best model (mean Dice; the ISBI measures where present)."""

    metric: str
    points: list[tuple[int, float]]
    training: dict
    scores: dict[str, float]


def read_run(folder: Path) -> Run:
    comparison = json.loads((folder / "comparison.json").read_text())
    epoch_length = int(json.loads((folder / "bundle" / "configs" / "train.json").read_text())["epoch_length"])
    training, ours = comparison["ours_training"], comparison["ours"]
    with open(folder / "ours" / "run" / "validation_history.csv") as f:
        rows = list(csv.DictReader(f))
    metric = "val_rand_error" if "val_rand_error" in rows[0] else "val_mean_dice"
    points = [(min(int(r["epoch"]) * epoch_length, training["iterations"]), float(r[metric])) for r in rows]
    isbi = {k: v for k, v in ours.get("isbi", {}).items() if "threshold" not in k}
    return Run(metric, points, training, {"mean Dice": ours["mean_dice"], **isbi})


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bf16", type=Path)
    parser.add_argument("fp32", type=Path)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    task = json.loads((args.bf16 / "comparison.json").read_text())["task"]
    runs = {"bf16": read_run(args.bf16), "fp32": read_run(args.fp32)}
    metric, measures = runs["bf16"].metric, list(runs["bf16"].scores)
    lines = [
        f"| {task}: precision | iterations | s / iteration | validation {metric} (iterations: value) | "
        + " | ".join(f"held-out {m}" for m in measures)
        + " |",
        "|---|---|---|---|" + "---|" * len(measures),
    ]
    for name, run in runs.items():
        history = ", ".join(f"{i}: {v:.3f}" for i, v in run.points)
        seconds_per_step = run.training["seconds"] / run.training["iterations"]
        lines.append(
            f"| {name} | {run.training['iterations']} | {seconds_per_step:.2f} | {history} | "
            + " | ".join(f"{run.scores[m]:.4f}" for m in measures)
            + " |"
        )
    x_max = max(i for run in runs.values() for i, _v in run.points)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    line_plot(
        {f"{name}: validation {metric}": run.points for name, run in runs.items()},
        x_max * 1.05,
        "training iterations",
        f"{task}, same plan and seed",
        args.output_dir / f"precision_convergence_{task}.png",
    )
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
