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
from pathlib import Path

from benchmarks.plots import line_plot

ROOT = Path(__file__).resolve().parents[1]


def curve(folder: Path) -> tuple[str, list[tuple[int, float]], dict]:
    """(selection metric, [(iterations done, validation value)], training record) of one run folder."""
    config = json.loads((folder / "bundle" / "configs" / "train.json").read_text())
    epoch_length = int(config["epoch_length"])
    training = json.loads((folder / "comparison.json").read_text())["ours_training"]
    with open(folder / "ours" / "run" / "validation_history.csv") as f:
        rows = list(csv.DictReader(f))
    metric = "val_rand_error" if "val_rand_error" in rows[0] else "val_mean_dice"
    points = [(min(int(r["epoch"]) * epoch_length, training["iterations"]), float(r[metric])) for r in rows]
    return metric, points, training


def held_out(folder: Path) -> dict[str, float]:
    """The held-out scores of the run's best model (mean Dice; the ISBI measures where present)."""
    ours = json.loads((folder / "comparison.json").read_text())["ours"]
    return {"mean Dice": ours["mean_dice"], **{k: v for k, v in ours.get("isbi", {}).items() if "threshold" not in k}}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bf16", type=Path)
    parser.add_argument("fp32", type=Path)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    task = json.loads((args.bf16 / "comparison.json").read_text())["task"]
    runs = {name: (folder, *curve(folder)) for name, folder in (("bf16", args.bf16), ("fp32", args.fp32))}
    metric = runs["bf16"][1]
    scores = {name: held_out(folder) for name, (folder, *_rest) in runs.items()}
    measures = list(scores["bf16"])
    lines = [
        f"| {task}: precision | iterations | s / iteration | validation {metric} (iterations: value) | "
        + " | ".join(f"held-out {m}" for m in measures)
        + " |",
        "|---|---|---|---|" + "---|" * len(measures),
    ]
    for name, (_folder, _metric, points, training) in runs.items():
        history = ", ".join(f"{i}: {v:.3f}" for i, v in points)
        lines.append(
            f"| {name} | {training['iterations']} | {training['seconds'] / training['iterations']:.2f} | {history} | "
            + " | ".join(f"{scores[name][m]:.4f}" for m in measures)
            + " |"
        )
    x_max = max(i for _f, _m, points, _t in runs.values() for i, _v in points)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    line_plot(
        {f"{name}: validation {metric}": points for name, (_f, _m, points, _t) in runs.items()},
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
