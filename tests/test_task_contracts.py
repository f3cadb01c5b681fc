"""Task contracts checked without running a chain: settings declared once (the trainers' dataclasses), inputs
taken from requirements, options refused before any work, requires() that writes nothing, a luigi.cfg that acts."""
from __future__ import annotations

import configparser
import dataclasses
from pathlib import Path

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from luigi.freezing import recursively_unfreeze
from luigi.parameter import UnknownParameterException
from luigi.task_register import Register

import tasks  # noqa: F401  (registers every task)
from pvl8da.errors import InputError
from pvl8da.synthetic import write_probav_product
from pvl8da.training.cyclegan_config import CycleGANConfig
from pvl8da.training.configs import CloudTrainConfig, GANConfig, UNetConfig
from tasks.base import Folder
from tasks.batch import InferenceAll
from tasks.fcd import FineTuneFCDPlus, TrainFCD, TrainFCDPlus, TrainSupervised
from tasks.training import TrainAllCycleGAN, TrainCloudDetector, TrainCycleGAN, TrainDefaultModels

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [(TrainCycleGAN, CycleGANConfig), (TrainAllCycleGAN, CycleGANConfig), (TrainCloudDetector, CloudTrainConfig),
           (TrainFCD, GANConfig), (TrainFCDPlus, UNetConfig), (TrainSupervised, UNetConfig)]


@pytest.mark.parametrize("task, config", CONFIGS, ids=[t.__name__ for t, _ in CONFIGS])
def test_task_defaults_are_the_dataclass_defaults(task, config):
    defaults = config()
    params = dict(task.get_params())
    shared = [f.name for f in dataclasses.fields(config) if f.name in params]
    assert len(shared) >= 5
    for name in shared:
        assert recursively_unfreeze(params[name]._default) == getattr(defaults, name), name


def test_finetune_takes_its_network_from_fcd_plus():
    assert {"width", "blocks"}.isdisjoint(FineTuneFCDPlus.get_param_names())
    with pytest.raises(UnknownParameterException):
        FineTuneFCDPlus(root="biome", width=99)
    with pytest.raises(SystemExit):
        with CmdlineParser.global_instance(["FineTuneFCDPlus", "--root", "biome", "--width", "99"]):
            pass
    assert (FineTuneFCDPlus(root="biome").lr, FineTuneFCDPlus(root="biome").keep_ratio) == (1e-5, 0.01)


def test_train_cyclegan_reads_its_requirements_dataset(tmp_path):
    config = luigi.configuration.get_config()
    config.set("BuildPseudoSimultaneousDataset", "patch_size", "32")
    try:
        task = TrainCycleGAN(pairs_csv=str(tmp_path / "pairs.csv"), dataset_folder=str(tmp_path))
        expected = tmp_path / "simultaneous_landsatbiomeaspv_32_32.hdf5"
        assert task.dataset() == expected and task.input().path == str(expected)
        assert task.provenance_files()["dataset"] == str(expected)
    finally:
        config.remove_section("BuildPseudoSimultaneousDataset")
    default = TrainCycleGAN(dataset_folder=str(tmp_path)).dataset()
    assert default == tmp_path / "simultaneous_landsatbiomeaspv_64_32.hdf5"


def test_unknown_ablations_are_refused_before_any_work(tmp_path):
    with pytest.raises(InputError, match="unknown ablations"):
        TrainDefaultModels(work_dir=str(tmp_path), ablations=["noidentity", "nosuch"])
    with pytest.raises(InputError, match="unknown ablations"):
        with CmdlineParser.global_instance(["TrainAllCycleGAN", "--ablations", '["nosuch"]']) as parser:
            parser.get_task_obj()
    assert not any(tmp_path.iterdir())
    assert TrainDefaultModels(ablations=["noidentity"]).ablations == ("noidentity",)


def test_inference_all_requires_writes_nothing(tmp_path):
    product = write_probav_product(tmp_path / "probav", shape=(24, 24), seed=1)
    dest = tmp_path / "adapted"
    weights = {"cloud_detection_weights": str(REPO / "checkpoints" / "cloud_detection.weights.h5"),
               "dagans_weights": str(REPO / "checkpoints" / "dagans_pv2l8.weights.h5")}
    (adapt,) = InferenceAll(products=str(product.parent / "*.HDF5"), dest=str(dest)).requires()
    adapt = adapt.clone(**weights)
    assert not dest.exists()
    assert adapt.requires() == Folder(path=str(dest))
    assert not adapt.complete()  # no error although the folder is still missing: Folder makes it
    assert luigi.build([adapt.requires()], local_scheduler=True, log_level="WARNING") and dest.is_dir()
    with pytest.raises(InputError, match="does not exist"):
        adapt.clone(image_dest=str(tmp_path / "missing" / "x.HDF5"), make_folder=False).complete()


def test_luigi_cfg_sets_only_what_takes_effect():
    config = configparser.ConfigParser()
    config.read(REPO / "configs" / "luigi.cfg")
    used = {name for task in Register._get_reg().values() for name in getattr(task, "resources", {})}
    assert set(config["resources"]) <= used
    assert "missing_data" not in config["retcode"]  # only incomplete ExternalTasks use it; pvl8da has none
