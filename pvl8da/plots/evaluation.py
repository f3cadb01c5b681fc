"""Bar chart of the EvaluateDA scores: one group of bars per metric, one bar per method."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pvl8da.plots.common import new_figure, save_figure

LABELS = {"overall_accuracy": "OA", "kappa": "kappa", "commission": "commission", "omission": "omission",
          "f1": "F1"}


def evaluation_bar_chart(rows: list[dict], path: str | Path, metrics: tuple[str, ...] = tuple(LABELS)) -> Path:
    """Grouped bars (percent) of ``metrics`` for each row's ``method``; NaN scores are left out."""
    methods = [r["method"] for r in rows]
    fig = new_figure(figsize=(1.6 + 1.5 * len(metrics), 4.2))
    ax = fig.subplots()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(metrics))
    for i, row in enumerate(rows):
        values = [100 * row[m] if not math.isnan(row[m]) else 0.0 for m in metrics]
        bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=row["method"])
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    ax.set_xticks(x, [LABELS.get(m, m) for m in metrics])
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title("Cloud detection on Proba-V (all products)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, len(methods)))
    return save_figure(fig, path)
