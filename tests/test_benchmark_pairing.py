"""Pairing a run of ours with a stored stock run (``benchmarks.planned_vs_stock --stock-from``), on the stored
comparison files in ``benchmarks/results``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.planned_vs_stock import _stored_stock
from benchmarks.time_to_accuracy import budgets, summarise

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_stored_stock_side_is_taken_whole():
    path = RESULTS / "planned_vs_stock_brats_fold0.json"
    stored = json.loads(path.read_text())
    paired = _stored_stock(path, "brats", 0)
    assert paired["stock"] == stored["stock"]
    assert paired["stock_curve"] == stored["stock_curve"]
    assert paired["stock_minutes"] == stored["minutes"] == 20.0
    assert paired["stock_from"] == path.name


@pytest.mark.parametrize(("task", "fold"), [("brats", 1), ("acdc", 0)])
def test_stored_stock_of_another_split_is_refused(task, fold):
    path = RESULTS / "planned_vs_stock_brats_fold0.json"
    with pytest.raises(SystemExit, match=r"planned_vs_stock_brats_fold0\.json.*same split"):
        _stored_stock(path, task, fold)


def test_half_budget_comparison_reports_both_budgets():
    """The ACDC comparison assembled by hand (ours 10 minutes, the stock's 20) carries both budgets."""
    comparison = json.loads(
        (RESULTS / "planned_vs_stock_acdc_fold0_ours10min_calibrated_vs_stock20min.json").read_text()
    )
    row = summarise(comparison)
    assert row["minutes"] == budgets(comparison) == {"ours": 10.0, "stock": 20.0}
    assert row["stock_best"][0] == max(r["val_mean_dice"] for r in comparison["stock_curve"])
