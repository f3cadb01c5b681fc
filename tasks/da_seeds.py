"""RunDASeeds: the full domain-adaptation model and the paper's ablations, trained with several seeds on synthetic
pairs and scored on held-out test pairs (mean ± sd; per-epoch criterion and test accuracy).

    python -m luigi --module tasks RunDASeeds --work-dir da_seeds --local-scheduler
"""
from __future__ import annotations

import json
from pathlib import Path

import luigi

from tasks.training import (ABLATIONS, AblationsParameter, SyntheticDAChain, TrainCycleGAN, pair_items, chain_cloud,
                            chain_gan, chain_pairs)


class RunDASeeds(SyntheticDAChain, luigi.Task):
    """Every configuration of ``--ablations`` (the full model first) with every seed of ``--seeds``:
    ``<work-dir>/seeds/summary.{md,csv}`` (selected epochs, mean ± sd over seeds), ``epochs.{csv,png}``."""

    seeds = luigi.ListParameter(default=[1, 2, 3])
    ablations = AblationsParameter(default=list(ABLATIONS), description=f"configurations of {list(ABLATIONS)}")
    resources = {"tensorflow": 1}

    def output(self):
        folder = Path(self.work_dir) / "seeds"
        return {name: luigi.LocalTarget(str(folder / name))
                for name in ("summary.csv", "summary.md", "epochs.csv", "epochs.png")}

    def run(self):
        from pvl8da.evaluation import da_seeds

        train_csv, test_csv = yield chain_pairs(self)
        cloud = yield chain_cloud(self, train_csv.path)
        names = ["full", *(a for a in self.ablations if a != "full")]
        gans = {(name, int(seed)): chain_gan(self, name, int(seed), train_csv.path, cloud.path)
                for name in names for seed in self.seeds}
        yield list(gans.values())
        items = yield from pair_items(self, test_csv.path)
        runs = [_seed_run(name, seed, task) for (name, seed), task in gans.items()]
        scores = da_seeds.score_epochs(items, cloud.path, runs)
        rows = da_seeds.epoch_rows(scores, runs)
        da_seeds.write_seed_reports(rows, da_seeds.summary_rows(rows, scores), Path(self.output()["summary.csv"].path).parent)


def _seed_run(name: str, seed: int, task: TrainCycleGAN):
    """A finished TrainCycleGAN run as :class:`pvl8da.evaluation.da_seeds.SeedRun` (its history and done.json)."""
    from pvl8da.evaluation.da_seeds import SeedRun
    from pvl8da.training.cyclegan import epoch_weights, read_history
    from pvl8da.training.cyclegan_config import output_paths

    paths = output_paths(task.folder, task.config())
    agreement = tuple(row["val_agreement"] for row in read_history(paths["history"]))
    files = tuple(epoch_weights(paths["epochs"], e) for e in range(1, len(agreement) + 1))
    return SeedRun(name, seed, files, agreement, json.loads(paths["done"].read_text())["selected_epoch"])
