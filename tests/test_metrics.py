"""Binary cloud-detection scores against hand-computed confusion matrices."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pvl8da.evaluation.metrics import Confusion, confusion, scores


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
