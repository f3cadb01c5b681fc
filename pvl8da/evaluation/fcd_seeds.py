"""FCD over several data seeds (synthetic Biome sets) and training seeds: every run's EvaluateBiome scores
(``metrics.csv``) gathered into mean ± standard deviation per method, overall and per biome, each seed's row
with the paper's three claims checked on it, and a figure.

The claims (SPEC §7, issue targets): FCD above the scenes' quality-band flag; the better FCD+ cut (at 0.5 or
calibrated) above FCD; FCD+1% within two points of the fully supervised U-Net (overall accuracy).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from pvl8da.errors import InputError
from pvl8da.evaluation.biome import CALIBRATED, FCD, QUALITY_FLAG
from pvl8da.evaluation.metrics import markdown_table, mean_sd, percent_mean_sd
from pvl8da.storage.atomic import atomic_path, save_csv_atomic

SCORES = ("accuracy", "f1_mean", "iou_mean")
FCD_PLUS, FINE_TUNED, SUPERVISED = "FCD+", "FCD+1%", "Supervised"
CLAIMS = {
    "FCD > flag": lambda acc: acc[FCD] > acc[QUALITY_FLAG],
    "FCD+ > FCD": lambda acc: max(acc[FCD_PLUS], acc.get(f"{FCD_PLUS} {CALIBRATED}", 0.0)) > acc[FCD],
    "FCD+1% >= supervised - 2": lambda acc: acc[FINE_TUNED] >= acc[SUPERVISED] - 0.02,
}


def read_run(metrics_csv: str | os.PathLike, data_seed: int, seed: int) -> list[dict]:
    """The overall and per-biome rows of one EvaluateBiome ``metrics.csv``, tagged with the run's seeds."""
    path = Path(metrics_csv)
    if not path.is_file():
        raise InputError(f"{path}: EvaluateBiome metrics not found")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["level"] in ("overall", "biome")]
    return [{"data_seed": data_seed, "seed": seed, "biome": r["biome"], "method": r["method"],
             **{k: float(r[k]) for k in SCORES}} for r in rows]


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over runs of every score, per biome (``all``: overall) and method."""
    out = []
    for biome in dict.fromkeys(r["biome"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            runs = [r for r in rows if r["biome"] == biome and r["method"] == method]
            row = {"biome": biome, "method": method, "runs": len(runs)}
            for k in SCORES:
                row[f"{k}_mean"], row[f"{k}_sd"] = mean_sd(r[k] for r in runs)
            out.append(row)
    return out


def seed_table_rows(rows: list[dict]) -> list[dict]:
    """Per run: the overall accuracy of every method and whether each claim of :data:`CLAIMS` holds."""
    out = []
    for data_seed, seed in dict.fromkeys((r["data_seed"], r["seed"]) for r in rows):
        acc = {r["method"]: r["accuracy"] for r in rows
               if (r["data_seed"], r["seed"]) == (data_seed, seed) and r["biome"] == "all"}
        out.append({"data_seed": data_seed, "seed": seed, **acc,
                    **{claim: bool(test(acc)) for claim, test in CLAIMS.items()}})
    return out


def summary_markdown(summary: list[dict], per_seed: list[dict]) -> str:
    """Overall table (mean ± sd), accuracy per biome, and each run's accuracies and claims."""
    methods = list(dict.fromkeys(r["method"] for r in summary))
    overall = {r["method"]: r for r in summary if r["biome"] == "all"}
    text = markdown_table(["method", "runs", "accuracy", "mean F1", "mean IoU"],
                          ([m, overall[m]["runs"], *(percent_mean_sd(overall[m], k) for k in SCORES)] for m in methods),
                          right_aligned=4)
    by = {(r["biome"], r["method"]): r for r in summary}
    biomes = [b for b in dict.fromkeys(r["biome"] for r in summary) if b != "all"]
    text += "\nAccuracy (%) per biome, mean ± sd over runs:\n\n" + markdown_table(
        ["biome", *methods], ([b, *(percent_mean_sd(by[b, m], "accuracy") for m in methods)] for b in biomes),
        right_aligned=len(methods))
    text += "\nEach run (overall accuracy, %; claims):\n\n" + markdown_table(
        ["data seed", "seed", *methods, *CLAIMS],
        ([r["data_seed"], r["seed"], *(f"{100 * r[m]:.2f}" for m in methods),
          *("yes" if r[c] else "**no**" for c in CLAIMS)] for r in per_seed),
        right_aligned=len(methods) + len(CLAIMS))
    return text


def write_seed_reports(runs: dict[tuple[int, int], str | os.PathLike], out_folder: str | os.PathLike) -> dict:
    """From ``{(data seed, seed): metrics.csv}``: ``runs.csv`` (every run's rows), ``seeds.png``,
    ``summary.md`` and, last, ``summary.csv`` in ``out_folder``; returns the per-run claims."""
    from pvl8da.plots.evaluation import fcd_seeds_figure

    rows = [r for (data_seed, seed), path in runs.items() for r in read_run(path, data_seed, seed)]
    summary, per_seed = summary_rows(rows), seed_table_rows(rows)
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    save_csv_atomic(rows, out / "runs.csv")
    fcd_seeds_figure(rows, summary, out / "seeds.png")
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(summary, per_seed))
    save_csv_atomic(summary, out / "summary.csv")
    return {(r["data_seed"], r["seed"]): {c: r[c] for c in CLAIMS} for r in per_seed}
