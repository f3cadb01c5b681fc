"""Scores of FCD: per-class accuracy/F1/IoU from a confusion matrix, and the F1-maximising threshold."""
from __future__ import annotations

import numpy as np

from pvl8da.errors import InputError
from pvl8da.evaluation.metrics import Confusion, confusion, ratio

SCORE_NAMES = ("accuracy", "f1_clear", "f1_cloud", "f1_mean", "iou_clear", "iou_cloud", "iou_mean")

__all__ = ["SCORE_NAMES", "Confusion", "confusion", "scores", "best_threshold"]


def scores(c: Confusion) -> dict[str, float]:
    """Accuracy, and F1 and IoU of the clear and the cloud class and their means."""
    f1_cloud = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)
    f1_clear = ratio(2 * c.tn, 2 * c.tn + c.fp + c.fn)
    iou_cloud = ratio(c.tp, c.tp + c.fp + c.fn)
    iou_clear = ratio(c.tn, c.tn + c.fp + c.fn)
    return {
        "accuracy": ratio(c.tp + c.tn, c.total),
        "f1_clear": f1_clear,
        "f1_cloud": f1_cloud,
        "f1_mean": float(np.nanmean([f1_clear, f1_cloud])) if c.total else float("nan"),
        "iou_clear": iou_clear,
        "iou_cloud": iou_cloud,
        "iou_mean": float(np.nanmean([iou_clear, iou_cloud])) if c.total else float("nan"),
    }


def best_threshold(values: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The threshold t maximising the cloud F1 of ``values >= t`` against ``truth``, and that F1.

    Exact: every distinct value is tried as a cut. InputError when ``truth`` has no positive pixel.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    n_pos = int(truth.sum())
    if n_pos == 0:
        raise InputError("threshold search: the labelled sample holds no cloud pixel")
    order = np.argsort(-values, kind="stable")
    v, y = values[order], truth[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    cut = np.r_[v[1:] != v[:-1], True]  # last index of each group of equal values
    f1 = np.where(cut, 2 * tp / (tp + fp + n_pos), -1.0)
    i = int(np.argmax(f1))
    return float(v[i]), float(f1[i])
