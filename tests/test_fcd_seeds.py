"""RunFCDSeeds' reports from constructed EvaluateBiome metrics: mean ± sd per method, the claims per run."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from pvl8da.evaluation import fcd_seeds
from pvl8da.evaluation.metrics import SCORE_NAMES

METHODS = ("FCD", "FCD+", "FCD+ calibrated", "FCD+1%", "Supervised", "Quality-band cloud flag")


def _write_metrics(path, accuracy: dict[str, float]) -> None:
    """An EvaluateBiome metrics.csv: one scene row (ignored), two biomes and the overall row per method."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["level", "name", "biome", "method", *SCORE_NAMES, "pixels"])
        writer.writeheader()
        for method, acc in accuracy.items():
            for level, name, biome, a in (("scene", "S1", "Barren", 0.1), ("biome", "Barren", "Barren", acc - 0.01),
                                          ("biome", "Snow", "Snow", acc + 0.01), ("overall", "all", "all", acc)):
                writer.writerow({"level": level, "name": name, "biome": biome, "method": method, "pixels": 10,
                                 **{k: a for k in SCORE_NAMES}})


def test_summary_means_are_the_means_of_the_rows(tmp_path):
    runs = {}
    table = {(1, 0): (0.95, 0.96, 0.97, 0.98, 0.99, 0.90), (2, 0): (0.93, 0.92, 0.91, 0.96, 0.99, 0.94),
             (3, 0): (0.96, 0.97, 0.96, 0.975, 0.98, 0.91)}
    for key, values in table.items():
        runs[key] = tmp_path / f"d{key[0]}.csv"
        _write_metrics(runs[key], dict(zip(METHODS, values)))
    claims = fcd_seeds.write_seed_reports(runs, tmp_path / "seeds")
    # run 2: FCD below the flag, both FCD+ cuts below FCD, FCD+1% 3 points below supervised
    assert claims[1, 0] == {c: True for c in fcd_seeds.CLAIMS}
    assert claims[2, 0] == {c: False for c in fcd_seeds.CLAIMS}
    assert claims[3, 0] == {"FCD > flag": True, "FCD+ > FCD": True, "FCD+1% >= supervised - 2": True}
    with open(tmp_path / "seeds" / "summary.csv", newline="") as f:
        summary = {(r["biome"], r["method"]): r for r in csv.DictReader(f)}
    assert len(summary) == 3 * len(METHODS)
    for i, method in enumerate(METHODS):
        values = [v[i] for v in table.values()]
        row = summary["all", method]
        assert int(row["runs"]) == 3
        assert float(row["accuracy_mean"]) == pytest.approx(np.mean(values))
        assert float(row["accuracy_sd"]) == pytest.approx(np.std(values, ddof=1))
        assert float(summary["Snow", method]["accuracy_mean"]) == pytest.approx(np.mean(values) + 0.01)
    text = (tmp_path / "seeds" / "summary.md").read_text()
    assert "| FCD | 3 | 94.67 ± 1.53 |" in text
    assert "| 2 | 0 | 93.00 | 92.00 | 91.00 | 96.00 | 99.00 | 94.00 | **no** | **no** | **no** |" in text
    assert (tmp_path / "seeds" / "seeds.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "seeds" / "runs.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3 * 3 * len(METHODS)  # the scene rows are left out


def test_missing_metrics_is_named(tmp_path):
    with pytest.raises(Exception, match="EvaluateBiome metrics not found"):
        fcd_seeds.write_seed_reports({(1, 0): tmp_path / "nope.csv"}, tmp_path / "seeds")
