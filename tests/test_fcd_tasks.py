"""The FCD Luigi chain end to end on tiny synthetic Biome scenes with tiny networks and a few steps."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import luigi
import numpy as np
import pytest
import rasterio

from pvl8da.errors import InputError
from pvl8da.evaluation.calibration import labelled_sample, sample_threshold
from pvl8da.datasets.patch_data import PatchData
from pvl8da.evaluation.metrics import class_scores as scores, confusion
from pvl8da.training.fcd_gan import FCDTrainer, GANConfig, train_fcd
from pvl8da.training.fcd_unet import cloud_probability, load_unet
from pvl8da.synthetic import write_biome_dataset
from tasks.fcd import (EvaluateBiome, FineTuneFCDPlus, GenerateFCDMasks, PrepareBiomePatches, RunFCDPaper,
                       TrainFCD, TrainFCDPlus, TrainSupervised)

TINY_UNET = dict(iterations=3, batch_size=4, width=4, blocks=[1, 1, 1, 1], val_every=3, checkpoint_every=3,
                 progress=False)


def _build(task) -> None:
    assert luigi.build([task], local_scheduler=True, workers=1, log_level="WARNING")
    assert task.complete()


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("fcd")
    root = write_biome_dataset(base / "biome", n_biomes=4, scenes_per_biome=3, shape=(160, 160), seed=2)
    common = {"root": str(root), "out_dir": str(base / "out"), "seed": 0}
    _build(PrepareBiomePatches(patch_size=64, **common))
    _build(TrainFCD(iterations=6, batch_size=4, width=4, n_res=1, d_width=4, identity_warmup=2, val_every=3,
                    checkpoint_every=3, progress=False, **common))
    _build(GenerateFCDMasks(sample_patches=8, **common))
    _build(TrainFCDPlus(**TINY_UNET, **common))
    finetune = {k: v for k, v in TINY_UNET.items() if k not in ("width", "blocks")}  # FCD+'s network, always
    _build(FineTuneFCDPlus(keep_ratio=0.1, lr=1e-5, **finetune, **common))
    _build(TrainSupervised(**TINY_UNET, **common))
    _build(EvaluateBiome(tile=96, **common))
    return {"out": base / "out", "root": root, "common": common}


def test_patches_and_gan(chain):
    out = chain["out"]
    assert (out / "patches" / "assignment.csv").is_file()
    assert json.loads((out / "fcd" / "done.json").read_text())["iterations"] == 6
    assert json.loads((out / "fcd" / "config.json").read_text())["identity_warmup"] == 2
    for name in ("generator_best.weights.h5", "generator_final.weights.h5", "config.json"):
        assert (out / "fcd" / name).is_file()
    assert any((out / "fcd" / "tensorboard").iterdir())
    assert not list(out.rglob("*.partial*"))


def test_masks(chain):
    out = chain["out"]
    with h5py.File(out / "patches" / "train.h5") as f:
        labels, n = f["labels"][:], len(f["labels"])
    with h5py.File(out / "fcd_masks" / "pseudo_masks.h5") as f:
        pseudo = f["cloud"][:]
    assert pseudo.shape == (n, 64, 64)
    assert not pseudo[labels == 0].any()  # clear patches forced clear
    rows = list(csv.DictReader(open(out / "patches" / "assignment.csv")))
    test_row = next(r for r in rows if r["split"] == "test")
    tif = out / "fcd_masks" / "scenes" / f"{test_row['scene_id']}_fcd.tif"
    band = Path(test_row["folder"]) / f"{test_row['scene_id']}_B1.TIF"
    with rasterio.open(tif) as a, rasterio.open(band) as b:
        assert a.crs == b.crs and a.transform == b.transform and a.shape == b.shape
        assert set(np.unique(a.read(1))) <= {0, 1, 255}


def test_unets_and_finetune(chain):
    out = chain["out"]
    for folder in ("fcd_plus", "fcd_plus_finetune", "supervised"):
        assert (out / folder / "model_best.weights.h5").is_file()
    ft = json.loads((out / "fcd_plus_finetune" / "config.json").read_text())
    assert ft["freeze_encoder"] and ft["keep_ratio"] == 0.1 and ft["lr"] == 1e-5 and ft["width"] == 4
    assert json.loads((out / "fcd_plus_finetune" / "done.json").read_text())["patches"] >= 1
    for folder in ("fcd_plus_finetune", "supervised"):
        assert "threshold" not in json.loads((out / folder / "done.json").read_text())


def test_fcd_plus_threshold_maximises_f1_on_fcds_labelled_sample(chain):
    out = chain["out"]
    done = json.loads((out / "fcd_plus" / "done.json").read_text())
    sample = json.loads((out / "fcd_masks" / "threshold.json").read_text())
    train = PatchData(out / "patches" / "train.h5")
    b = train.batch(labelled_sample(len(train), sample["sample_patches"], sample["seed"]))
    train.close()
    prob = cloud_probability(load_unet(out / "fcd_plus"), b["x"])
    valid, truth = b["valid"][..., 0] > 0, b["cloud"][..., 0] > 0

    def f1(threshold: float) -> float:
        return scores(confusion(prob >= threshold, truth, valid))["f1_cloud"]

    assert 0 < done["threshold"] <= 1
    assert f1(done["threshold"]) == pytest.approx(done["threshold_sample_f1"], abs=1e-6)
    grid = np.quantile(prob[valid], np.linspace(0, 1, 41))
    assert f1(done["threshold"]) >= max(f1(t) for t in [0.5, *grid]) - 1e-9


def test_calibration_refuses_pseudo_targets(chain):
    path = chain["out"] / "patches" / "train.h5"
    with h5py.File(path) as f:
        n = len(f["labels"])
    pseudo = PatchData(path, np.zeros((n, 64, 64), np.uint8))
    with pytest.raises(InputError, match="real masks"):
        sample_threshold(lambda x: x[..., 0], pseudo, 4, 0)
    pseudo.close()


def test_evaluation(chain):
    ev = chain["out"] / "evaluation"
    rows = list(csv.DictReader(open(ev / "metrics.csv")))
    methods = {r["method"] for r in rows}
    assert methods == {"FCD", "FCD+", "FCD+ calibrated", "FCD+1%", "Supervised", "Quality-band cloud flag"}
    assert {r["level"] for r in rows} == {"scene", "biome", "overall"}
    assert len({r["biome"] for r in rows if r["level"] == "biome"}) == 4
    assert "| FCD+1% |" in (ev / "table.md").read_text()
    assert "| FCD+ calibrated |" in (ev / "table.md").read_text()
    assert (ev / "examples.png").stat().st_size > 1000
    assert RunFCDPaper(**chain["common"]).complete()


def test_gan_resumes_after_kill(tmp_path, chain):
    patches = chain["out"] / "patches"
    cfg = GANConfig(iterations=2, batch_size=2, width=4, n_res=1, d_width=4, val_every=100, checkpoint_every=2)
    train_fcd(patches / "train.h5", patches / "val.h5", tmp_path / "run", cfg, progress=False)
    (tmp_path / "run" / "done.json").unlink()  # as if killed after the checkpoint
    cfg.iterations = 3
    summary = train_fcd(patches / "train.h5", patches / "val.h5", tmp_path / "run", cfg, progress=False)
    assert summary["resumed_at"] == 2


def test_identity_warmup_brings_generator_to_identity(tmp_path, chain):
    train = PatchData(chain["out"] / "patches" / "train.h5")
    trainer = FCDTrainer(GANConfig(batch_size=4, width=4, n_res=1, d_width=4), tmp_path, train.patch_size)
    b = train.batch(np.arange(8))

    def distance(c):
        return float(np.mean(np.abs(trainer.G([b["x"], c]).numpy() - b["x"])))

    before = [distance(b["label"]), distance(1.0 - b["label"])]
    trainer.identity_warmup(train, 60, progress=False)
    after = [distance(b["label"]), distance(1.0 - b["label"])]
    train.close()
    assert max(after) < 0.4 * min(before), (before, after)
