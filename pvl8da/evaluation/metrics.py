"""Binary cloud-detection scores over valid pixels: accuracy, Cohen's kappa, commission, omission, F1.

Commission error is the fraction of clear pixels labelled cloud, FP / (FP + TN); omission error is the
fraction of cloud pixels labelled clear, FN / (FN + TP) -- the definitions of the paper's tables.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

METRIC_NAMES = ("overall_accuracy", "kappa", "commission", "omission", "f1")


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a binary confusion matrix (cloud = positive)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def confusion(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> Confusion:
    """Counts of ``pred`` against ``truth`` (booleans or 0/1) on the pixels where ``valid`` is true."""
    pred = np.asarray(pred).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {truth.shape}")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        pred, truth = pred[valid], truth[valid]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def ratio(num: float, den: float) -> float:
    """num / den as a float, NaN when the denominator is 0."""
    return float(num) / float(den) if den else float("nan")


def scores(c: Confusion) -> dict[str, float]:
    """Overall accuracy, Cohen's kappa, commission and omission errors and F1 (cloud class); NaN when undefined."""
    n = c.total
    oa = ratio(c.tp + c.tn, n)
    expected = ratio((c.tp + c.fp) * (c.tp + c.fn) + (c.fn + c.tn) * (c.fp + c.tn), float(n) * n) if n else float("nan")
    if n == 0:
        kappa = float("nan")
    elif expected == 1.0:
        kappa = 1.0 if oa == 1.0 else 0.0
    else:
        kappa = (oa - expected) / (1.0 - expected)
    return {
        "overall_accuracy": oa,
        "kappa": kappa,
        "commission": ratio(c.fp, c.fp + c.tn),
        "omission": ratio(c.fn, c.fn + c.tp),
        "f1": ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    }
