"""The cloud U-Net trainer resumes a killed run from its last epoch checkpoint and ends bit for bit where an
uninterrupted run of the same seed ends."""
from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from pvl8da.training import cloud_unet as cu

CONFIG = cu.CloudTrainConfig(epochs=3, batch_size=4, patch_size=16, steps_per_epoch=3, seed=5)


def _fake_patches(path, size: int = 16, stride: int = 32, min_valid_fraction: float = 0.25) -> cu.Patches:
    """Seeded random patches per product name (stands for reading a Landsat-as-Proba-V product)."""
    rng = np.random.default_rng(sum(map(ord, str(path))))
    x = rng.uniform(0, 0.6, (8, size, size, 4)).astype(np.float32)
    y = (x[..., 3] > 0.3).astype(np.float32)
    return cu.Patches(x, y, (rng.uniform(size=y.shape) > 0.1).astype(np.float32))


def _weights(path) -> list[np.ndarray]:
    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    return [a for _, a in sorted(arrays, key=lambda item: item[0])]


class Killed(Exception):
    """Stands for the process being killed."""


def test_killed_run_resumes_and_matches_uninterrupted(tmp_path, monkeypatch):
    monkeypatch.setattr(cu, "product_patches", _fake_patches)
    products = [f"scene{i}.h5" for i in range(3)]
    ref = cu.train_cloud_detector(products, tmp_path / "ref" / "cloud.weights.h5", CONFIG)

    class KillAfter(cu.ResumeCallback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            KillAfter.batches += 1
            if KillAfter.batches == 5:  # in the middle of the second epoch
                raise Killed

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(cu, "ResumeCallback", KillAfter)
        with pytest.raises(Killed):
            cu.train_cloud_detector(products, run / "cloud.weights.h5", CONFIG)
    assert not (run / "cloud.weights.h5").exists()
    assert (run / "cloud_checkpoints" / "ckpt-1.index").is_file()

    resumed_epochs = []

    class Counting(cu.ResumeCallback):
        def on_epoch_begin(self, epoch, logs=None):
            resumed_epochs.append(epoch)

    monkeypatch.setattr(cu, "ResumeCallback", Counting)
    summary = cu.train_cloud_detector(products, run / "cloud.weights.h5", CONFIG)
    assert resumed_epochs == [1, 2]
    assert not (run / "cloud_checkpoints").exists() and not list(run.glob("*partial*"))
    with open(run / "cloud_history.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert summary["best_epoch"] == ref["best_epoch"]
    assert summary["best_loss"] == pytest.approx(ref["best_loss"], rel=1e-5)
    for a, b in zip(_weights(run / "cloud.weights.h5"), _weights(tmp_path / "ref" / "cloud.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert json.loads((run / "cloud_metrics.json").read_text())["config"]["epochs"] == 3


def test_checkpoints_of_another_configuration_are_discarded(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cu, "product_patches", _fake_patches)
    stale = tmp_path / "cloud_checkpoints"
    stale.mkdir()
    (stale / "config.json").write_text(json.dumps({"lr": 5.0}))
    (stale / "checkpoint").write_text("not a checkpoint of this run")
    config = cu.CloudTrainConfig(epochs=1, batch_size=4, patch_size=16, steps_per_epoch=1)
    summary = cu.train_cloud_detector(["a.h5", "b.h5"], tmp_path / "cloud.weights.h5", config)
    assert summary["best_epoch"] == 1 and "another configuration" in caplog.text
    assert (tmp_path / "cloud.weights.h5").is_file() and not stale.exists()
