"""The training chain end to end through Luigi on tiny synthetic data (a few steps), and its bad input."""
from __future__ import annotations

import csv

import h5py
import luigi
import numpy as np
import pytest

from pvl8da.evaluation import da as evaluate_da
from pvl8da.errors import InputError
from pvl8da.evaluation.metrics import METRIC_NAMES
from tasks.training import ABLATIONS, EvaluateDA, TrainAllCycleGAN, TrainCycleGAN, TrainDefaultModels


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """TrainDefaultModels on two training pairs (one held out for selecting the epoch) and one test pair, one
    epoch of two steps per model."""
    root = tmp_path_factory.mktemp("chain")
    task = TrainDefaultModels(work_dir=str(root / "work"), checkpoints=str(root / "checkpoints"), n_train_pairs=2,
                              n_test_pairs=1, l8_size=1536, cloud_epochs=1, cloud_steps=2, gan_epochs=1, gan_steps=2,
                              gan_batch_size=2, ablations=["noidentity"])
    assert luigi.build([task], local_scheduler=True, workers=1, log_level="WARNING")
    return root, task


def test_default_models_chain(chain):
    root, task = chain
    work = root / "work"
    for target in task.output().values():
        assert (root / "checkpoints").joinpath(target.path.split("/")[-1]).is_file()
    with h5py.File(work / "datasets" / "simultaneous_landsatbiomeaspv_64_32.hdf5", "r") as f:
        assert f["PV"].shape[1:] == (64, 64, 4) and f["PV"].shape == f["LU"].shape
    models = work / "models"
    for suffix in ("full_s1", "noidentity_s1"):
        assert (models / f"genpv2l8cycle_64_16_{suffix}.weights.h5").is_file()
        assert any((models / f"genpv2l8cycle_64_16_{suffix}_logs").iterdir())
        assert (models / f"genpv2l8cycle_64_16_{suffix}_epochs" / "epoch_001.weights.h5").is_file()
    assert (models / "cloud_detection_history.csv").is_file() and (models / "cloud_detection_metrics.json").is_file()
    with open(work / "evaluation" / "evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = {r["method"] for r in rows if r["product"] == "overall"}
    assert methods == {evaluate_da.SM_METHOD, evaluate_da.RAW_METHOD, evaluate_da.LANDSAT_METHOD,
                       "U-Net + full", "U-Net + noidentity"}
    assert all(0 <= float(r["overall_accuracy"]) <= 1 for r in rows)
    assert (work / "evaluation" / "evaluation.png").stat().st_size > 0
    assert "| overall | SM (operational) |" in (work / "evaluation" / "evaluation.md").read_text()


def test_evaluate_da_with_geotiff_masks(chain, tmp_path):
    root, _ = chain
    work = root / "work"
    task = EvaluateDA(pv_folder=str(work / "synthetic_test11" / "probav"),
                      weights_cloud_detection=str(work / "models" / "cloud_detection.weights.h5"),
                      dagans={"full": str(work / "models" / "genpv2l8cycle_64_16_full_s1.weights.h5")},
                      out_folder=str(tmp_path / "eval"))
    assert luigi.build([task], local_scheduler=True, workers=1, log_level="WARNING")
    with open(tmp_path / "eval" / "evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    overall = {r["method"]: r for r in rows if r["product"] == "overall"}
    assert set(overall) == {evaluate_da.SM_METHOD, evaluate_da.RAW_METHOD, "U-Net + full"}
    assert all(set(METRIC_NAMES) <= set(r) for r in rows)


def test_train_cyclegan_task_resumes_and_ablations(chain, tmp_path):
    root, _ = chain
    work = root / "work"
    common = dict(folder=str(tmp_path / "models"), dataset_folder=str(work / "datasets"),
                  weights_cloud_detection=str(work / "models" / "cloud_detection.weights.h5"),
                  batch_size=2, steps_per_epoch=1)
    first = TrainCycleGAN(suffix="r", epochs=1, **common)
    assert luigi.build([first], local_scheduler=True, workers=1, log_level="WARNING")
    second = TrainCycleGAN(suffix="r", epochs=2, **common)
    second.run()  # the same run continued for one more epoch, from the epoch-1 checkpoint
    history = list(csv.DictReader(open(tmp_path / "models" / "genpv2l8cycle_64_8_r_history.csv")))
    assert [int(r["epoch"]) for r in history] == [0, 1]
    wrapper = TrainAllCycleGAN(**common, epochs=1)
    assert {t.suffix for t in wrapper.requires().values()} == set(ABLATIONS)
    assert wrapper.requires()["nosegmentation_nocycle"].cycled_lambda == 0.0


def test_missing_cloud_weights_writes_nothing(chain, tmp_path):
    root, _ = chain
    task = TrainCycleGAN(folder=str(tmp_path / "models"), dataset_folder=str(root / "work" / "datasets"),
                         weights_cloud_detection=str(tmp_path / "nope.weights.h5"), batch_size=2, epochs=1)
    with pytest.raises(InputError, match="nope.weights.h5"):
        task.run()
    assert not (tmp_path / "models").exists()


def test_missing_dataset_and_missing_generator(tmp_path):
    task = TrainCycleGAN(folder=str(tmp_path / "models"), dataset_folder=str(tmp_path), batch_size=2, epochs=1)
    with pytest.raises(InputError, match="simultaneous_landsatbiomeaspv_64_32.hdf5"):
        task.run()
    with pytest.raises(InputError, match="missing_gen.weights.h5"):
        evaluate_da.load_models(tmp_path / "missing_cloud.weights.h5", {"x": tmp_path / "missing_gen.weights.h5"})
    assert not (tmp_path / "models").exists()


def test_score_rows_pools_pixels():
    rows = evaluate_da.score_rows([
        {"product": "a", "method": "m", "tp": 1, "fp": 0, "fn": 0, "tn": 1},
        {"product": "b", "method": "m", "tp": 0, "fp": 1, "fn": 1, "tn": 0}])
    overall = [r for r in rows if r["product"] == "overall"]
    assert len(overall) == 1 and overall[0]["overall_accuracy"] == pytest.approx(0.5)
    assert overall[0]["pixels"] == 4 and np.isclose(rows[0]["overall_accuracy"], 1.0)


def test_chain_keeps_the_segmentation_weight_where_the_configuration_keeps_the_term():
    from tasks.training import chain_gan

    chain = TrainDefaultModels(work_dir="w", gan_seg_lambda=0.25)
    weights = {name: chain_gan(chain, name, 1, "train.csv", "cloud.h5")
               for name in ("full", "noidentity", "nosegmentation", "nosegmentation_nocycle")}
    assert weights["full"].segmentation_consistency_lmbda == 0.25 and weights["full"].identity_lambda == 5.0
    assert (weights["noidentity"].segmentation_consistency_lmbda, weights["noidentity"].identity_lambda) == (0.25, 0.0)
    assert weights["nosegmentation"].segmentation_consistency_lmbda == 0.0
    assert (weights["nosegmentation_nocycle"].segmentation_consistency_lmbda,
            weights["nosegmentation_nocycle"].cycled_lambda) == (0.0, 0.0)
    assert TrainDefaultModels(work_dir="w").gan_seg_lambda == 0.1
