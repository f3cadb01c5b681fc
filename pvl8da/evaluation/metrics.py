"""Binary cloud-detection scores over valid pixels, for both systems, and the tables that report them.

Domain adaptation (``scores``, METRIC_NAMES): accuracy, Cohen's kappa, commission, omission, F1. Commission
error is the fraction of clear pixels labelled cloud, FP / (FP + TN); omission error is the fraction of cloud
pixels labelled clear, FN / (FN + TP) -- the definitions of the paper's tables. FCD (``class_scores``,
SCORE_NAMES): accuracy, F1 and IoU of each class and their means; ``best_threshold`` picks a cut by F1.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pvl8da.errors import InputError

METRIC_NAMES = ("overall_accuracy", "kappa", "commission", "omission", "f1")
SCORE_NAMES = ("accuracy", "f1_clear", "f1_cloud", "f1_mean", "iou_clear", "iou_cloud", "iou_mean")


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


def class_scores(c: Confusion) -> dict[str, float]:
    """Accuracy, and F1 and IoU of the clear and the cloud class and their means (SCORE_NAMES)."""
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


def roc_auc(values: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve of scores ``values`` for boolean ``truth`` (Mann-Whitney, ties counted half);
    NaN when either class is missing."""
    from scipy.stats import rankdata

    values, truth = np.ravel(values), np.ravel(truth).astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    a = np.asarray(list(values), dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def percent_mean_sd(row: dict, key: str) -> str:
    """``row[key_mean]`` in percent, followed by ``± row[key_sd]`` where the row has it; "" without a mean."""
    if f"{key}_mean" not in row:
        return ""
    sd = row.get(f"{key}_sd")
    return f"{100 * row[f'{key}_mean']:.2f}" + ("" if sd is None else f" ± {100 * sd:.2f}")


def percent(value: float | None, digits: int = 2) -> str:
    """A score in percent with ``digits`` decimals; "–" when it is missing or NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}"


def markdown_row(cells: Iterable[object]) -> str:
    """One line of a Markdown table."""
    return "| " + " | ".join(map(str, cells)) + " |\n"


def markdown_table(header: Sequence[str], rows: Iterable[Iterable[object]], right_aligned: int = 0) -> str:
    """A Markdown table, each line ending in a newline; the last ``right_aligned`` columns align right."""
    rule = "|" + "|".join(["---"] * (len(header) - right_aligned) + ["---:"] * right_aligned) + "|\n"
    return markdown_row(header) + rule + "".join(markdown_row(cells) for cells in rows)
