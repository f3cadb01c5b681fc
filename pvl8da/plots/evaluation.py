"""Figures of the evaluations: the EvaluateDA bar chart, the per-epoch curves of the DA seeds study and the FCD seeds study."""
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


def epochs_figure(rows: list[dict], path: str | Path) -> Path:
    """Per configuration, the validation agreement (label-free criterion) and the test accuracy of every epoch,
    one line per seed; the selected epochs are marked."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    fig = new_figure(figsize=(3.2 * len(configs), 5.6))
    axes = fig.subplots(2, len(configs), squeeze=False, sharex=True, sharey="row")
    for col, config in enumerate(configs):
        for seed in dict.fromkeys(r["seed"] for r in rows if r["config"] == config):
            run = [r for r in rows if r["config"] == config and r["seed"] == seed]
            epochs = [r["epoch"] for r in run]
            for ax, key in zip(axes[:, col], ("val_agreement", "overall_accuracy")):
                line, = ax.plot(epochs, [100 * r[key] for r in run], marker=".", label=f"seed {seed}")
                ax.plot([r["epoch"] for r in run if r["selected"]], [100 * r[key] for r in run if r["selected"]],
                        "o", mfc="none", ms=10, color=line.get_color())
        axes[0, col].set_title(config, fontsize=9)
        axes[1, col].set_xlabel("epoch")
    axes[0, 0].set_ylabel("validation agreement (%)")
    axes[1, 0].set_ylabel("test OA (%)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Label-free criterion and test accuracy per epoch (circles: selected epochs)", fontsize=10)
    return save_figure(fig, path)


def fcd_seeds_figure(rows: list[dict], summary: list[dict], path: str | Path) -> Path:
    """Overall accuracy and mean F1 of every FCD method: one dot per run (data seed, seed) of ``rows``, the mean ± sd
    of ``summary`` as a bar."""
    overall = [r for r in rows if r["biome"] == "all"]
    means = {r["method"]: r for r in summary if r["biome"] == "all"}
    methods = list(means)
    fig = new_figure(figsize=(1.2 + 1.1 * len(methods), 6.4))
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(methods))
    for ax, key, label in zip(axes, ("accuracy", "f1_mean"), ("accuracy (%)", "mean F1 (%)")):
        values = [[100 * r[key] for r in overall if r["method"] == m] for m in methods]
        ax.bar(x, [100 * means[m][f"{key}_mean"] for m in methods], 0.6,
               yerr=[100 * means[m][f"{key}_sd"] for m in methods], color="0.8", capsize=3)
        for i, v in enumerate(values):
            ax.plot(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)), v, "o", ms=4, color="C0")
        low = min(min(v) for v in values)
        ax.set_ylim(max(0.0, low - 5), 100)
        ax.set_ylabel(label)
    axes[1].set_xticks(x, methods, rotation=30, ha="right", fontsize=8)
    axes[0].set_title(f"FCD over {len({(r['data_seed'], r['seed']) for r in overall})} runs (dots: runs)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
