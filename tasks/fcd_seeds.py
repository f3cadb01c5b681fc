"""RunFCDSeeds: the FCD chain on several synthetic Biome sets (data seeds) and training seeds, summarised as one
table of mean ± sd per method, overall and per biome, each run's row with the paper's claims, and a figure.

    LUIGI_CONFIG_PATH=configs/fcd_seeds.cfg python -m luigi --module tasks RunFCDSeeds --local-scheduler
"""
from __future__ import annotations

from pathlib import Path

import luigi

from tasks.fcd import EvaluateBiome


class RunFCDSeeds(luigi.Task):
    """EvaluateBiome of every (data seed, seed): scenes in ``<work-dir>/biome_d<data seed>/``, the chain in
    ``<work-dir>/d<data seed>_s<seed>/``, the reports in ``<work-dir>/seeds/``. The other tasks' settings
    (scene count and size, iterations, ...) come from the Luigi configuration, as for RunFCDPaper."""

    work_dir = luigi.Parameter(default="fcd_seeds")
    data_seeds = luigi.ListParameter(default=[1, 2, 3], description="seeds of the synthetic Biome sets")
    seeds = luigi.ListParameter(default=[0], description="split, sampling and initialisation seeds")

    def requires(self):
        work = Path(self.work_dir)
        return {(int(d), int(s)): EvaluateBiome(root=str(work / f"biome_d{d}"), out_dir=str(work / f"d{d}_s{s}"),
                                                seed=int(s), data_seed=int(d), synthetic=True)
                for d in self.data_seeds for s in self.seeds}

    def output(self):
        folder = Path(self.work_dir) / "seeds"
        return {name: luigi.LocalTarget(str(folder / name)) for name in ("runs.csv", "seeds.png", "summary.md",
                                                                         "summary.csv")}

    def run(self):
        from pvl8da.evaluation.fcd_seeds import write_seed_reports

        runs = {key: Path(target.path) / "metrics.csv" for key, target in self.input().items()}
        write_seed_reports(runs, Path(self.output()["summary.csv"].path).parent)
