"""Binary cloud-detection scores against hand-computed confusion matrices."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pvl8da.evaluation.biome import score_tables
from pvl8da.evaluation.da import score_table
from pvl8da.evaluation.metrics import SCORE_NAMES, Confusion, class_scores, confusion, markdown_table, scores


def test_confusion_counts_only_valid_pixels():
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 1]])
    truth = np.array([[1, 0, 1, 0], [1, 1, 0, 0]])
    valid = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    assert confusion(pred, truth, valid) == Confusion(tp=2, fp=1, fn=2, tn=1)
    assert confusion(pred, truth) == Confusion(tp=2, fp=2, fn=2, tn=2)


def test_scores_hand_computed():
    s = scores(Confusion(tp=40, fp=10, fn=20, tn=30))
    assert s["overall_accuracy"] == pytest.approx(0.7)
    pe = (50 * 60 + 50 * 40) / 100**2  # expected agreement = 0.5
    assert s["kappa"] == pytest.approx((0.7 - pe) / (1 - pe))
    assert s["commission"] == pytest.approx(10 / 40)
    assert s["omission"] == pytest.approx(20 / 60)
    assert s["f1"] == pytest.approx(80 / 110)


def test_scores_degenerate_cases():
    perfect = scores(Confusion(tp=0, fp=0, fn=0, tn=5))
    assert perfect["overall_accuracy"] == 1.0 and perfect["kappa"] == 1.0
    assert math.isnan(perfect["omission"]) and math.isnan(perfect["f1"])
    assert all(math.isnan(v) for v in scores(Confusion()).values())
    assert Confusion(1, 2, 3, 4) + Confusion(1, 1, 1, 1) == Confusion(2, 3, 4, 5)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)))


def test_one_implementation_of_each_score_and_table():
    c = Confusion(tp=3, fp=1, fn=2, tn=4)
    assert class_scores(c)["f1_cloud"] == scores(c)["f1"] == 6 / 9 and tuple(class_scores(c)) == SCORE_NAMES
    assert markdown_table(["a", "b"], [[1, "x"]], right_aligned=1) == "| a | b |\n|---|---:|\n| 1 | x |\n"


def test_report_tables_are_unchanged():
    da_rows = [{"product": p, "method": "U-Net", "overall_accuracy": 0.5, "kappa": float("nan"), "commission": 0.25,
                "omission": None, "f1": 1.0, "pixels": 7} for p in ("P1", "overall")]
    assert score_table(da_rows) == (
        "| product | method | OA | kappa | commission | omission | F1 | pixels |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
        "| overall | U-Net | 50.00 | – | 25.00 | – | 100.00 | 7 |\n"
        "| P1 | U-Net | 50.00 | – | 25.00 | – | 100.00 | 7 |\n")
    biome_rows = [{"level": level, "biome": "Urban", "method": "FCD", **dict.fromkeys(SCORE_NAMES, 0.5)}
                  for level in ("overall", "biome")]
    assert score_tables(biome_rows, ["FCD"]) == (
        "| Method | Accuracy | F1 clear | F1 cloud | mean F1 | IoU clear | IoU cloud | mean IoU |\n"
        "|---|---|---|---|---|---|---|---|\n| FCD | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 |\n\n"
        "Accuracy / mean F1 (%) per biome:\n\n| Biome | FCD |\n|---|---|\n| Urban | 50.0 / 50.0 |\n")


def test_roc_auc_counts_ordered_pairs():
    from pvl8da.evaluation.metrics import roc_auc

    truth = np.array([0, 0, 1, 1, 0, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7]), truth) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), truth) == 0.0
    # positives 0.5, 0.2, 0.9 against negatives 0.1, 0.5, 0.3: 6 pairs ordered, one tie (half), two reversed
    assert roc_auc(np.array([0.1, 0.5, 0.5, 0.2, 0.3, 0.9]), truth) == pytest.approx(6.5 / 9)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([True, True])))
