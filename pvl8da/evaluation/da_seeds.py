"""Domain adaptation over several seeds: every epoch of every run scored on held-out test pairs, the selected
epochs summarised as mean ± standard deviation per configuration, and how well the label-free criterion
ranks the epochs (:mod:`pvl8da.evaluation.selection`).

The recovered fraction of a run is (OA adapted − OA raw) / (OA Landsat-as-PV − OA raw): the share of the
accuracy lost from Landsat-as-Proba-V to raw Proba-V that the adaptation wins back.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvl8da.evaluation.da import LANDSAT_METHOD, RAW_METHOD, SM_METHOD, EvalItem, evaluate_product, load_models, \
    score_rows
from pvl8da.evaluation.metrics import METRIC_NAMES, markdown_table, mean_sd, percent_mean_sd
from pvl8da.evaluation.selection import rank_correlation
from pvl8da.storage.atomic import atomic_path, save_csv_atomic

log = logging.getLogger(__name__)

SUMMARY_METRICS = (*METRIC_NAMES[:4], "recovered")


@dataclass(frozen=True)
class SeedRun:
    """One trained configuration and seed: its per-epoch generator files and validation agreements, and the
    epoch its training selected."""

    config: str
    seed: int
    epoch_files: tuple[Path, ...]
    val_agreement: tuple[float, ...]
    selected: int


def score_epochs(items: list[EvalItem], cloud_weights: str | os.PathLike, runs: list[SeedRun]) -> dict[str, dict]:
    """Overall test scores (pixels pooled over ``items``) of the baselines and of every epoch of every run,
    keyed by method name (``<config> seed <s> epoch <e>`` for the runs)."""
    files = {epoch_method(run, e): path for run in runs for e, path in enumerate(run.epoch_files, start=1)}
    cloud, generators = load_models(cloud_weights, files)
    counts = []
    for item in items:
        log.info("scoring %d generators on %s", len(generators), Path(item.pvimage).name)
        counts += evaluate_product(item, cloud, generators)
    return {row["method"].removeprefix("U-Net + "): row for row in score_rows(counts) if row["product"] == "overall"}


def epoch_method(run: SeedRun, epoch: int) -> str:
    """The method name of ``epoch`` (1-based) of ``run`` in :func:`score_epochs`."""
    return f"{run.config} seed {run.seed} epoch {epoch}"


def recovered(adapted: float, raw: float, landsat: float) -> float:
    """Share of the accuracy lost from Landsat-as-PV to raw PV that ``adapted`` wins back."""
    return (adapted - raw) / (landsat - raw)


def epoch_rows(scores: dict[str, dict], runs: list[SeedRun]) -> list[dict]:
    """One row per epoch of every run: validation agreement, test scores, recovered fraction, selected or not."""
    raw, landsat = scores[RAW_METHOD]["overall_accuracy"], scores[LANDSAT_METHOD]["overall_accuracy"]
    rows = []
    for run in runs:
        for epoch, agreement in enumerate(run.val_agreement, start=1):
            s = scores[epoch_method(run, epoch)]
            rows.append({"config": run.config, "seed": run.seed, "epoch": epoch, "val_agreement": agreement,
                         **{k: s[k] for k in METRIC_NAMES[:4]},
                         "recovered": recovered(s["overall_accuracy"], raw, landsat),
                         "selected": epoch == run.selected})
    return rows


def summary_rows(rows: list[dict], scores: dict[str, dict]) -> list[dict]:
    """Per configuration: mean and standard deviation over seeds of the selected epochs' scores, the mean rank
    correlation of criterion and test accuracy over epochs, and the baselines (seed-independent)."""
    out = [{"config": name, "seeds": 1, **{f"{k}_mean": scores[method][k] for k in METRIC_NAMES[:4]}}
           for name, method in (("Landsat-as-PV", LANDSAT_METHOD), ("no adaptation", RAW_METHOD),
                                ("SM (operational)", SM_METHOD))]
    for config in dict.fromkeys(r["config"] for r in rows):
        runs = [r for r in rows if r["config"] == config]
        chosen = [r for r in runs if r["selected"]]
        row = {"config": config, "seeds": len(chosen)}
        for k in SUMMARY_METRICS:
            row[f"{k}_mean"], row[f"{k}_sd"] = mean_sd(r[k] for r in chosen)
        row["rank_correlation"] = float(np.nanmean([
            rank_correlation([r["val_agreement"] for r in runs if r["seed"] == s],
                             [r["overall_accuracy"] for r in runs if r["seed"] == s])
            for s in dict.fromkeys(r["seed"] for r in runs)] or [np.nan]))
        out.append(row)
    return out


def summary_table(summary: list[dict]) -> str:
    """Markdown table of :func:`summary_rows` in percent (kappa × 100), mean ± sd over seeds."""
    header = ["method", "seeds", "OA", "kappa", "commission", "omission", "recovered", "rank corr."]
    return markdown_table(header, ([r["config"], r["seeds"], *(percent_mean_sd(r, k) for k in SUMMARY_METRICS),
                                    "" if "rank_correlation" not in r else f"{r['rank_correlation']:.2f}"]
                                   for r in summary), right_aligned=7)


def write_seed_reports(rows: list[dict], summary: list[dict], out_folder: str | os.PathLike) -> dict[str, Path]:
    """``epochs.csv``, ``epochs.png`` (criterion and test accuracy per epoch), ``summary.md`` and, last,
    ``summary.csv`` in ``out_folder``."""
    from pvl8da.plots.evaluation import epochs_figure

    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("epochs.csv", "epochs.png", "summary.md", "summary.csv")}
    save_csv_atomic(rows, paths["epochs.csv"])
    epochs_figure(rows, paths["epochs.png"])
    with atomic_path(paths["summary.md"]) as tmp:
        tmp.write_text(summary_table(summary))
    save_csv_atomic(summary, paths["summary.csv"])
    return paths
