"""Pairing a run of ours with a stored stock run (``benchmarks.planned_vs_stock --stock-from``), on the stored
comparison files in ``benchmarks/results``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.planned_vs_stock import _curve_ours, _stored_stock
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


def test_ours_curve_as_the_bundle_segments(tmp_path):
    """The post-processed curve takes the largest-component Dice only for the classes the run chose it for."""
    (tmp_path / "validation_history.csv").write_text(
        "epoch,elapsed_s,val_mean_dice,val_dice_1,val_dice_2,val_dice_lcc_1,val_dice_lcc_2\n"
        "1,60.0,0.5,0.4,0.6,0.7,0.5\n"
        "2,120.0,0.7,0.6,0.8,0.9,0.1\n"
    )
    curve = _curve_ours(tmp_path, keep_largest=[1])
    assert [r["seconds"] for r in curve] == [60.0, 120.0]
    assert [r["val_mean_dice"] for r in curve] == [0.5, 0.7]
    assert [round(r["val_mean_dice_postprocessed"], 6) for r in curve] == [0.65, 0.85]
    assert [r["val_mean_dice_postprocessed"] for r in _curve_ours(tmp_path, keep_largest=[])] == [0.5, 0.7]


def test_time_to_the_stock_final_and_best_validation():
    """The stock's final validation is its last; the ratios divide ours' first reaching by the stock's first
    reaching and by its run's length; the post-processed curve is read where recorded."""
    comparison = {
        "task": "acdc",
        "fold": 0,
        "minutes": 20.0,
        "stock_curve": [
            {"seconds": 100.0, "val_mean_dice": 0.6},
            {"seconds": 200.0, "val_mean_dice": 0.8},
            {"seconds": 400.0, "val_mean_dice": 0.7},
        ],
        "ours_curve": [
            {"seconds": 50.0, "val_mean_dice": 0.5, "val_mean_dice_postprocessed": 0.72},
            {"seconds": 150.0, "val_mean_dice": 0.75, "val_mean_dice_postprocessed": 0.81},
        ],
    }
    row = summarise(comparison)
    assert row["stock_final"] == (0.7, 200.0) and row["stock_best"] == (0.8, 200.0) and row["stock_run_s"] == 400.0
    assert row["ours_network_to_stock_final_s"] == 150.0 and row["ours_postprocessed_to_stock_final_s"] == 50.0
    assert row["ratio_network_final_to_first"] == 0.75 and row["ratio_postprocessed_final_to_run"] == 0.125
    assert row["ours_network_to_stock_best_s"] is None and row["ratio_postprocessed_best_to_first"] == 0.75


def test_brats_regions_are_unions_of_label_values(tmp_path):
    """Whole tumour, tumour core and enhancing tumour are scored as unions of the predicted and true BRATS labels
    (a prediction that swaps necrosis for non-enhancing tumour loses nothing on the regions)."""
    import nibabel as nib
    import numpy as np

    from benchmarks.planned_vs_stock import brats_region_scores

    truth = np.zeros((8, 8, 4), np.uint8)
    truth[1:3, 1:3] = 1  # necrosis: 16 voxels
    truth[3:5, 1:3] = 2  # oedema: 16
    truth[5:7, 1:3] = 4  # enhancing: 16
    predicted = truth.copy()
    predicted[truth == 1] = 3  # non-enhancing instead of necrosis: same core
    predicted[3:5, 1:3] = 0  # oedema missed: whole tumour 32 of 48
    for array, name in ((truth, "case_label.nii.gz"), (predicted, "case_seg.nii.gz")):
        nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / name)
    split = {"validation": [{"image": str(tmp_path / "case.nii.gz"), "label": str(tmp_path / "case_label.nii.gz")}]}
    scores = brats_region_scores(tmp_path, split)
    assert scores["whole tumour"] == pytest.approx(2 * 32 / (32 + 48))
    assert scores["tumour core"] == pytest.approx(1.0)
    assert scores["enhancing tumour"] == pytest.approx(1.0)
