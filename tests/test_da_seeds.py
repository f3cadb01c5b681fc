"""RunDASeeds' tables from constructed scores: recovered fraction, selected epochs, mean ± sd, rank correlation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pvl8da.evaluation import da_seeds
from pvl8da.evaluation.da import LANDSAT_METHOD, RAW_METHOD, SM_METHOD


def _scores(oa: float) -> dict:
    return {"overall_accuracy": oa, "kappa": oa - 0.1, "commission": 1 - oa, "omission": 0.01, "f1": oa}


def test_summary_of_selected_epochs():
    runs = [da_seeds.SeedRun("full", seed, (Path("e1"), Path("e2"), Path("e3")), agreement, selected)
            for seed, agreement, selected in ((1, (0.90, 0.95, 0.93), 2), (2, (0.91, 0.92, 0.96), 3))]
    oa = {(1, 1): 0.90, (1, 2): 0.96, (1, 3): 0.94, (2, 1): 0.91, (2, 2): 0.93, (2, 3): 0.98}
    scores = {RAW_METHOD: _scores(0.88), LANDSAT_METHOD: _scores(0.98), SM_METHOD: _scores(0.85),
              **{da_seeds.epoch_method(run, e): _scores(oa[run.seed, e]) for run in runs for e in (1, 2, 3)}}
    rows = da_seeds.epoch_rows(scores, runs)
    assert [(r["seed"], r["epoch"]) for r in rows if r["selected"]] == [(1, 2), (2, 3)]
    assert rows[1]["recovered"] == pytest.approx((0.96 - 0.88) / (0.98 - 0.88))
    summary = {r["config"]: r for r in da_seeds.summary_rows(rows, scores)}
    full = summary["full"]
    assert full["seeds"] == 2 and full["overall_accuracy_mean"] == pytest.approx(0.97)
    assert full["overall_accuracy_sd"] == pytest.approx(np.std([0.96, 0.98], ddof=1))
    assert full["recovered_mean"] == pytest.approx(0.9)
    assert full["rank_correlation"] == pytest.approx(1.0)  # both runs rank their epochs as the test does
    assert summary["no adaptation"]["overall_accuracy_mean"] == 0.88
    table = da_seeds.summary_table(list(summary.values()))
    assert "| full | 2 | 97.00 ± 1.41 |" in table and "| 90.00 ± 14.14 | 1.00 |" in table
    assert "| no adaptation | 1 | 88.00 |" in table
