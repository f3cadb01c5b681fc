"""The README's commands through the real command line, ``python -m luigi --module tasks <Task> ...``.

Every test built its tasks in Python until ConvertPV's own ``--workers`` turned out to collide with
Luigi's: the README's first command stopped in argparse before doing anything. So this module checks
(1) that no task parameter collides with Luigi's own options, (2) that every ``python -m luigi`` command
of the README (and of ``make demo``) parses and names existing options, (3) that the task sections of
``configs/*.cfg`` name existing parameters, and (4) runs the README's commands in a subprocess
(cwd = repository root, as the README assumes) on small synthetic inputs, checking the exit status and
the outputs. Paths become temporary absolute ones; where a command would run long, a test luigi
config (``LUIGI_CONFIG_PATH``) shrinks iterations and sizes; it also sets Luigi's ``[retcode]``, since
Luigi's default exit status is 0 even when a task fails.

README command -> test (every command is also parsed by test_every_readme_command_parses):

- ``ConvertPV --l8img LC08_L1TP_002054_… --outfolder … --resolution 333M``: test_convert_pv_landsat8
- ``ConvertPV --l8img BC/<ID> --type-product biome --outfolder … --quicklook``: test_convert_pv_biome_quicklook (*)
- ``InferenceDA --pvimage PROBAV_L2A_… --image-dest out/PROBAV_ADAPTED.HDF5`` (the project's checkpoints/):
  test_inference_da_with_project_checkpoints
- ``InferenceDA … --cloud-detection-weights published --dagans-weights published``:
  tests/test_published_weights.py
- ``InferenceClouds --image … --image-dest …``: test_inference_clouds
- ``BuildPseudoSimultaneousDataset --pairs-csv … --dataset-folder …``: test_build_pseudo_simultaneous_dataset
- ``TrainCloudDetector --l8-folder … --folder …``: test_train_cloud_detector
- ``TrainCycleGAN --dataset-folder … --suffix full --folder … --weights-cloud-detection …``: test_train_cyclegan
- ``EvaluateDA --pairs-csv … --dagans '{"full": …}'`` and ``EvaluateDA --pv-folder …``: test_evaluate_da_pairs,
  test_evaluate_da_pv_folder
- ``TrainDefaultModels --work-dir … --ablations '["noidentity","nosegmentation"]'``: test_train_default_models
  (one pair, one epoch of two steps per model, via the test config)
- ``DownloadLandsat8 --scene-id … --dest …`` (Biome archive): test_download_biome (*)
- ``DownloadLandsat8 --source stac --scene-id LC08_L1TP_139029_… --dest …``: test_download_stac
- ``ConvertPV --l8img landsat8/<ID> --type-product biome --download biome``: test_convert_pv_downloads_the_scene (*)
- ``ConvertAll --scenes … --scheduler-host … --workers 2`` (luigid): tests/test_batch_luigid.py::
  test_two_workers_share_the_batch_and_a_rerun_does_nothing
- ``InferenceAll --products … --dest … --scheduler-host … --workers 1`` (luigid):
  test_inference_all_through_luigid
- ``RunFCDPaper --root … --out-dir …`` and ``LUIGI_CONFIG_PATH=configs/fcd_small.cfg … RunFCDPaper``:
  test_run_fcd_paper (both forms in one run: --root/--out-dir on the command line, a config derived from
  fcd_small.cfg with smaller scenes and a few iterations)
- ``LUIGI_CONFIG_PATH=configs/fcd_proof.cfg … RunFCDPaper``: parsed only (the proof run takes 17 minutes)
- ``LUIGI_CONFIG_PATH=configs/fcd_seeds.cfg … RunFCDSeeds``: test_run_fcd_seeds (two data seeds, two training
  seeds, the tiny FCD sizes)
- ``GenerateSyntheticScene --kind landsat8 --rows 1024 … --collection 2 --biome-mask``:
  test_generate_synthetic_landsat8
- ``GenerateSyntheticScene --kind probav … --acquired 2016-05-20T10:15:00 --with-truth``:
  test_generate_synthetic_probav
- ``GenerateSyntheticScene --kind landsat8 … --satellite 9``: parsed only
- ``<Task> --help``: test_help_lists_the_task_options (ConvertPV)
- ``make demo`` (``Demo --local-scheduler --out demo_output``): test_demo

(*) On pre-collection synthetic scenes under the README's Biome scene IDs (``LC80010112014080LGN00``,
``LC81390292014135LGN00``), as the real Biome scenes are.
"""
from __future__ import annotations

import configparser
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import _no_value
from luigi.task_register import Register

import tasks  # noqa: F401  (registers every task, as --module tasks does)
from fake_http import FakeServer
from pvl8da.datasets.pairs import write_synthetic_pairs
from pvl8da.synthetic import write_landsat8_scene, write_probav_product
from test_batch_luigid import luigid  # noqa: F401  (fixture: a luigid on a free loopback port)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PNG = b"\x89PNG\r\n\x1a\n"
CLI_TIMEOUT_S = 300
TOA_BANDS = ("BLUE", "RED", "NIR", "SWIR")
# Keys Luigi reads from its config directly, not through a parameter.
READ_BY_LUIGI_ITSELF = {("core", "autoload_range")}
# README command (task family) -> the test that runs it through the command line.
COVERED = {
    "ConvertPV": "test_convert_pv_landsat8, test_convert_pv_biome_quicklook, test_convert_pv_downloads_the_scene",
    "InferenceDA": "test_inference_da_with_project_checkpoints (published weights: tests/test_published_weights.py; "
                   "--precision: tests/test_precision.py; KERAS_BACKEND=jax: tests/test_jax_backend.py)",
    "DownloadLandsat8": "test_download_biome, test_download_stac",
    "ConvertAll": "tests/test_batch_luigid.py::test_two_workers_share_the_batch_and_a_rerun_does_nothing",
    "InferenceAll": "test_inference_all_through_luigid",
    "TrainDefaultModels": "test_train_default_models",
    "RunDASeeds": "test_run_da_seeds",
    "RunFCDPaper": "test_run_fcd_paper",
    "RunFCDSeeds": "test_run_fcd_seeds",
    "GenerateSyntheticScene": "test_generate_synthetic_landsat8, test_generate_synthetic_probav",
    "Demo": "test_demo",
}

BASE_CONFIG = {
    "core": {"no_lock": "true", "autoload_range": "false", "log_level": "INFO"},
    "worker": {"check_complete_on_run": "true"},
    "retcode": {"task_failed": "30", "scheduling_error": "35", "unhandled_exception": "40"},
}
# The training chain in seconds: one epoch of two steps per model (the README's commands give the paths).
TINY_TRAINING = {
    "TrainCloudDetector": {"epochs": "1", "steps_per_epoch": "2", "batch_size": "4"},
    "TrainCycleGAN": {"epochs": "1", "steps_per_epoch": "2", "batch_size": "2"},
    "TrainDefaultModels": {"n_train_pairs": "2", "n_test_pairs": "1", "l8_size": "1536", "cloud_epochs": "1",
                           "cloud_steps": "2", "gan_epochs": "1", "gan_steps": "2", "gan_batch_size": "2"},
}
TINY_TRAINING["RunDASeeds"] = TINY_TRAINING["TrainDefaultModels"]
# configs/fcd_small.cfg shrunk further: 12 scenes of 160 px, widths 4, a few iterations.
TINY_FCD = {
    "SyntheticBiome": {"n_biomes": "4", "scenes_per_biome": "3", "size": "160"},
    "TrainFCD": {"iterations": "6", "batch_size": "4", "width": "4", "n_res": "1", "d_width": "4",
                 "identity_warmup": "2", "val_every": "3", "checkpoint_every": "3"},
    "GenerateFCDMasks": {"sample_patches": "8"},
    "TrainFCDPlus": {"iterations": "3", "batch_size": "4", "width": "4", "val_every": "3", "checkpoint_every": "3"},
    "FineTuneFCDPlus": {"keep_ratio": "0.1", "iterations": "3", "batch_size": "4", "val_every": "3",
                        "checkpoint_every": "3"},
    "TrainSupervised": {"iterations": "3", "batch_size": "4", "width": "4", "val_every": "3", "checkpoint_every": "3"},
    "EvaluateBiome": {"tile": "96"},
}


# --- helpers ----------------------------------------------------------------------------------


def write_config(path: Path, *sections: dict, base: Path | None = None) -> Path:
    """A luigi config: ``base`` (if any), then BASE_CONFIG, then ``sections`` (later keys win)."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    if base is not None:
        config.read(base)
    for part in (BASE_CONFIG, *sections):
        for section, values in part.items():
            if not config.has_section(section):
                config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)
    with open(path, "w") as f:
        config.write(f)
    return path


def luigi_cli(*args: str, config: Path, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``python -m luigi --module tasks <args>`` from the repository root, as the README runs it."""
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(config), TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg",
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "tasks", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}: {' '.join(proc.args)}\n{output[-6000:]}"
    assert "This progress looks :)" in output, output[-6000:]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_toa(product: Path) -> None:
    """Four int16 TOA bands, reflectance x 2000 with -2000 where invalid, mostly valid and plausible."""
    with h5py.File(product, "r") as h5:
        for band in TOA_BANDS:
            toa = h5[f"LEVEL2A/RADIOMETRY/{band}/TOA"]
            assert toa.dtype == np.int16 and toa.ndim == 2 and min(toa.shape) > 0
            values = toa[()]
            valid = values != -2000
            assert valid.mean() > 0.3, (band, valid.mean())
            assert ((values[valid] > -200) & (values[valid] < 3200)).all(), (band, values[valid].min(),
                                                                              values[valid].max())


def check_cloud_cog(cog_path: Path, probability: np.ndarray) -> None:
    """The cloud COG: EPSG:4326 uint8, 0 clear, 1 cloud (probability >= 0.5), 255 no data."""
    with rasterio.open(cog_path) as cog:
        assert cog.crs.to_epsg() == 4326 and cog.dtypes[0] == "uint8" and cog.nodata == 255
        mask = cog.read(1)
    assert mask.shape == probability.shape
    assert ((mask == 255) == (probability < 0)).all() and ((mask == 1) == (probability >= 0.5)).all()


def check_probability(values: np.ndarray) -> None:
    valid = values >= 0
    assert valid.mean() > 0.5 and (values[valid] <= 1).all() and (values[~valid] == -1).all()
    assert np.isfinite(values).all()


def readme_commands() -> list[str]:
    """Every ``python -m luigi ...`` command of README.md (code blocks and inline code) and of ``make demo``."""
    text = README.read_text()
    commands = []
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if "python -m luigi" in line:
                commands.append(line.strip())
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M)
    commands += [" ".join(span.split()) for span in re.findall(r"`([^`]*python -m luigi[^`]*)`", prose)]
    make = (REPO / "Makefile").read_text()
    commands += [line.strip().replace("$(PY)", "python") for line in make.splitlines() if "-m luigi" in line]
    return commands


def split_command(command: str) -> tuple[dict[str, str], list[str]]:
    """(environment assignments, luigi arguments after ``--module tasks``) of one README command."""
    command = re.sub(r"<luigid host>", "localhost", command)
    words = shlex.split(command, comments=True)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[:5] == ["python", "-m", "luigi", "--module", "tasks"], command
    return env, words[5:]


# --- option clashes, README commands and configs, in-process -------------------------------------


def _our_task_families() -> list[str]:
    return sorted(name for name in Register.task_names()
                  if Register.get_task_cls(name).__module__.split(".")[0] == "tasks")


def _global_flags() -> dict[str, str]:
    """Every option Luigi's parser always adds (``--workers``, ``--scheduler-host``, ``--worker-keep-alive``,
    ``--ConvertPV-outfolder`` ...), mapped to the section it comes from; built as luigi.cmdline_parser does."""
    flags = {}
    for family, without_section, param_name, _ in Register.get_all_params():
        name = param_name if without_section else f"{family}_{param_name}"
        flags["--" + name.replace("_", "-")] = family
    return flags


def test_no_task_parameter_collides_with_luigis_options():
    global_flags = _global_flags()
    luigi_own = {flag: section for flag, section in global_flags.items()
                 if Register.get_task_cls(section).__module__.split(".")[0] == "luigi"}
    assert {"--workers", "--local-scheduler", "--scheduler-host", "--module", "--help"} <= luigi_own.keys()
    assert any(section == "worker" for section in luigi_own.values())
    assert any(section == "scheduler" for section in luigi_own.values())
    families = _our_task_families()
    assert {"ConvertPV", "InferenceDA", "TrainDefaultModels", "RunFCDPaper", "ConvertAll"} <= set(families)
    clashes = []
    for family in families:
        for param_name, _ in Register.get_task_cls(family).get_params():
            local = "--" + param_name.replace("_", "-")
            if local in global_flags:
                clashes.append(f"{family} {local} (Luigi's {local} of [{global_flags[local]}])")
    assert not clashes, "task parameters that collide with Luigi's own options as root task: " + "; ".join(clashes)
    for family in families:  # and the real parser, as `python -m luigi --module tasks <family>` builds it
        with CmdlineParser.global_instance([family]) as parser:
            assert parser.known_args.root_task == family


def test_every_readme_command_parses():
    commands = readme_commands()
    families = []
    for command in commands:
        env, args = split_command(command)
        family = args[0]
        if family == "<Task>":  # the generic `<Task> --help`; run for ConvertPV below
            continue
        families.append(family)
        assert family in COVERED, f"README command without a CLI test (add one, or to COVERED): {command}"
        if "KERAS_BACKEND" in env:  # run as written by tests/test_jax_backend.py
            assert env.pop("KERAS_BACKEND") in ("tensorflow", "jax", "torch"), command
        for key, value in env.items():
            assert key == "LUIGI_CONFIG_PATH" and (REPO / value).is_file(), command
            config = configparser.ConfigParser(interpolation=None)
            config.read(REPO / value)
            required = [name for name, param in Register.get_task_cls(family).get_params()
                        if param._default is _no_value and f"--{name.replace('_', '-')}" not in args]
            missing = [name for name in required if not config.has_option(family, name)]
            assert not missing, f"{value} gives no [{family}] {missing}: {command}"
        try:
            with CmdlineParser.global_instance(args) as parser:
                assert parser.known_args.root_task == family
                if not env:  # (with a config, the task's other parameters come from it)
                    parser.get_task_obj()  # parses every value (dates, lists, dicts, choices)
        except (SystemExit, Exception) as exc:
            pytest.fail(f"README command does not parse: {command}\n{type(exc).__name__}: {exc}")
    assert len(families) >= 15
    assert {"ConvertPV", "InferenceDA", "DownloadLandsat8", "ConvertAll", "InferenceAll", "TrainDefaultModels",
            "RunFCDPaper", "GenerateSyntheticScene", "Demo"} <= set(families)


@pytest.mark.parametrize("config_path", sorted((REPO / "configs").glob("*.cfg")), ids=lambda p: p.name)
def test_config_task_sections_name_existing_parameters(config_path):
    """Luigi ignores an unknown key in a task's section: a misspelt one would silently change nothing."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(config_path)
    registered = set(Register.task_names())
    unknown = []
    for section in config.sections():
        if section not in registered:
            continue  # [resources], [task_history] ...: not task sections
        params = {name for name, _ in Register.get_task_cls(section).get_params()}
        unknown += [f"[{section}] {key}" for key in config.options(section)
                    if key.replace("-", "_") not in params and (section, key) not in READ_BY_LUIGI_ITSELF]
    assert not unknown, f"{config_path.name}: keys that are not parameters: {unknown}"


# --- the commands, through the command line --------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def config(work) -> Path:
    """Luigi settings for the commands that run as the README writes them (exit status, no pid lock)."""
    return write_config(work / "luigi.cfg", TINY_TRAINING)


@pytest.fixture(scope="module")
def scenes(work) -> dict[str, Path]:
    """Small synthetic scenes: the README's Collection 1 scene and a pre-collection Biome scene under BC/."""
    return {"landsat8": write_landsat8_scene(work / "scenes", shape=(96, 96), seed=1, collection=1, with_pan=False,
                                             lat=10.8, lon=-62.0,
                                             scene_id="LC08_L1TP_002054_20160520_20170324_01_T1"),
            "biome": write_landsat8_scene(work / "scenes" / "BC", shape=(96, 96), seed=2, collection=0,
                                          with_pan=False, with_biome_mask=True, cloud_cover=0.4,
                                          scene_id="LC80010112014080LGN00")}


def test_help_lists_the_task_options(config):
    proc = luigi_cli("ConvertPV", "--help", config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for option in ("--l8img", "--type-product", "--resolution", "--outfolder", "--quicklook", "--threads",
                   "--download", "--local-scheduler"):
        assert option in proc.stdout, option


def test_convert_pv_landsat8(work, config, scenes):
    out = work / "landsataspv"
    proc = luigi_cli("ConvertPV", "--local-scheduler", "--l8img", scenes["landsat8"], "--outfolder", out,
                     "--resolution", "333M", config=config)
    assert_ok(proc)
    product = out / "LC08_L1TP_002054_20160520_20170324_01_T1_333M.HDF5"
    check_toa(product)
    with h5py.File(product, "r") as h5:
        assert h5.attrs["image"] == scenes["landsat8"].name and "CM_RESAMPLED" not in h5
    assert sorted(p.name for p in out.iterdir()) == [product.name]


@pytest.fixture(scope="module")
def biome_product(work, config, scenes) -> tuple[subprocess.CompletedProcess, Path]:
    out = work / "landsataspv_biome"
    proc = luigi_cli("ConvertPV", "--local-scheduler", "--l8img", scenes["biome"], "--type-product", "biome",
                     "--outfolder", out, "--quicklook", "--threads", "1", config=config)
    return proc, out / f"{scenes['biome'].name}_333M.HDF5"


def test_convert_pv_biome_quicklook(biome_product):
    proc, product = biome_product
    assert_ok(proc)
    check_toa(product)
    with h5py.File(product, "r") as h5:
        clouds = h5["CM_RESAMPLED"][()]
    labelled = clouds >= 0
    assert labelled.mean() > 0.3 and (clouds[labelled] <= 1).all() and (clouds[~labelled] == -1).all()
    assert 0 < (clouds[labelled] >= 0.5).mean() < 1  # cloud_cover 0.4: some cloud, some clear
    assert product.with_suffix(".png").read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def probav(work) -> Path:
    return write_probav_product(work / "probav", shape=(64, 64), seed=4, lat=45.0, lon=5.0,
                                acquired=dt.datetime(2015, 7, 4, 10, 15, 30, tzinfo=dt.timezone.utc))


def test_inference_da_with_project_checkpoints(work, config, probav):
    assert probav.name == "PROBAV_L2A_20150704_101530_2_333M_V101.HDF5"
    before = sha256(probav)
    (work / "out").mkdir()
    dest = work / "out" / "PROBAV_ADAPTED.HDF5"
    proc = luigi_cli("InferenceDA", "--local-scheduler", "--pvimage", probav, "--image-dest", dest, config=config)
    assert_ok(proc)
    assert sha256(probav) == before
    with h5py.File(dest, "r") as h5:
        probability = h5["CM_PVDAGANS"][()]
        assert probability.dtype == np.float32 and probability.shape == (64, 64)
        for band in TOA_BANDS:
            assert h5[f"LEVEL2A/RADIOMETRY/{band}/TOA"].shape == (64, 64)
    check_probability(probability)
    check_cloud_cog(work / "out" / "PROBAV_ADAPTED_clouds.tif", probability)
    assert (work / "out" / "PROBAV_ADAPTED_quicklook.png").read_bytes()[:8] == PNG
    assert f"INFO: wrote {dest}" in proc.stderr, "pvl8da's own log lines show under the command line"


def test_inference_clouds(work, config, biome_product):
    _, product = biome_product
    dest = work / "clouds_unet" / "LANDSAT_UNET.HDF5"
    dest.parent.mkdir()
    proc = luigi_cli("InferenceClouds", "--local-scheduler", "--image", product, "--image-dest", dest, config=config)
    assert_ok(proc)
    with h5py.File(dest, "r") as h5:
        probability = h5["CM_UNET"][()]
        assert "CM_RESAMPLED" in h5
    check_probability(probability)
    check_cloud_cog(dest.with_name("LANDSAT_UNET_clouds.tif"), probability)


def test_inference_all_through_luigid(luigid, work):  # noqa: F811  (luigid is the imported fixture)
    products = [write_probav_product(work / "batch_probav", shape=(48, 40), seed=seed, acquired=when)
                for seed, when in ((5, dt.datetime(2016, 5, 20, 10, tzinfo=dt.timezone.utc)),
                                   (6, dt.datetime(2016, 5, 21, 10, tzinfo=dt.timezone.utc)))]
    dest = work / "adapted"
    proc = luigi_cli("InferenceAll", "--products", f"{work / 'batch_probav'}/*.HDF5", "--dest", dest,
                     "--scheduler-host", "127.0.0.1", "--scheduler-port", luigid, "--workers", "1",
                     config=REPO / "configs" / "luigi.cfg")
    assert_ok(proc)
    for product in products:
        with h5py.File(dest / f"{product.stem}_ADAPTED.HDF5", "r") as h5:
            check_probability(h5["CM_PVDAGANS"][()])
        assert (dest / f"{product.stem}_ADAPTED_clouds.tif").is_file()


# --- downloads, from the loopback HTTP server of conftest.py (`server`) ------------------------------


@pytest.fixture(scope="module")
def biome_archive_scene(work) -> Path:
    """A pre-collection Biome scene with all of B1-B11 (the archive's content), under the README's scene ID."""
    return write_landsat8_scene(work / "archive_src", shape=(96, 96), seed=8, collection=0, with_biome_mask=True,
                                lat=40.5, lon=95.0, scene_id="LC81390292014135LGN00")


def serve_biome_archive(server: FakeServer, scene: Path) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(scene, arcname=f"BC/{scene.name}")
    server.files[f"/cca/{scene.name}.tar.gz"] = buffer.getvalue()
    return server.url + "/cca"


def same_files(got: Path, want: Path) -> bool:
    return (sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
            and all((got / p.name).read_bytes() == p.read_bytes() for p in want.iterdir()))


def test_download_biome(server, tmp_path, config, biome_archive_scene):
    scene_id = biome_archive_scene.name
    base_url = serve_biome_archive(server, biome_archive_scene)
    proc = luigi_cli("DownloadLandsat8", "--local-scheduler", "--scene-id", scene_id, "--dest", tmp_path / "landsat8",
                     "--base-url", base_url, config=config)
    assert_ok(proc)
    assert same_files(tmp_path / "landsat8" / scene_id, biome_archive_scene)
    assert server.requests and all(p.startswith(f"/cca/{scene_id}.tar.gz") for p, _, _ in server.requests)


def test_download_stac(server, tmp_path, work, config):
    scene_id = "LC08_L1TP_139029_20140515_20200911_02_T1"
    source = write_landsat8_scene(work / "stac_src", shape=(96, 96), seed=9, collection=2, scene_id=scene_id,
                                  lat=40.5, lon=95.0)
    assets = {}
    for path in sorted(source.iterdir()):
        body = path.read_bytes()
        server.files[f"/data/{scene_id}/{path.name}"] = body
        assets[path.name] = {"href": f"{server.url}/data/{scene_id}/{path.name}", "file:size": len(body),
                             "file:checksum": "1220" + hashlib.sha256(body).hexdigest()}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": "landsat-c2l1",
            "assets": assets}
    server.files[f"/stac/collections/landsat-c2l1/items/{scene_id}"] = json.dumps(item).encode()
    proc = luigi_cli("DownloadLandsat8", "--local-scheduler", "--source", "stac", "--scene-id", scene_id,
                     "--dest", tmp_path / "landsat8", "--stac-url", server.url + "/stac", config=config)
    assert_ok(proc)
    assert same_files(tmp_path / "landsat8" / scene_id, source)


def test_convert_pv_downloads_the_scene(server, tmp_path, config, biome_archive_scene):
    scene_id = biome_archive_scene.name
    base_url = serve_biome_archive(server, biome_archive_scene)
    proc = luigi_cli("ConvertPV", "--local-scheduler", "--l8img", tmp_path / "landsat8" / scene_id,
                     "--type-product", "biome", "--download", "biome", "--outfolder", tmp_path / "landsataspv",
                     "--DownloadLandsat8-base-url", base_url, config=config)
    assert_ok(proc)
    assert same_files(tmp_path / "landsat8" / scene_id, biome_archive_scene)
    product = tmp_path / "landsataspv" / f"{scene_id}_333M.HDF5"
    check_toa(product)
    with h5py.File(product, "r") as h5:
        assert "CM_RESAMPLED" in h5


# --- synthetic scenes ------------------------------------------------------------------------------


def test_generate_synthetic_landsat8(tmp_path, config):
    from pvl8da.sensors.landsat8 import open_scene

    proc = luigi_cli("GenerateSyntheticScene", "--local-scheduler", "--kind", "landsat8", "--rows", "1024",
                     "--cols", "1024", "--seed", "3", "--lat", "-33.9", "--lon", "18.4", "--collection", "2",
                     "--biome-mask", "--dest", tmp_path, config=config)
    assert_ok(proc)
    [folder] = list(tmp_path.iterdir())
    assert folder.name.startswith("LC08_") and folder.name.endswith("_02_T1")
    names = {p.name[len(folder.name) + 1:] for p in folder.iterdir()}
    assert {f"B{b}.TIF" for b in range(1, 12)} | {"QA_PIXEL.TIF", "MTL.txt", "fixedmask.hdr", "fixedmask.img"} <= names
    scene = open_scene(folder, "biome")
    assert scene.collection == 2 and scene.crs.to_epsg() == 32734 and scene.shape == (1024, 1024)
    toa = scene.toa(4)
    assert np.isfinite(toa[toa > 0]).all() and 0.01 < np.nanmedian(toa[toa > 0]) < 1.2


def test_generate_synthetic_probav(tmp_path, config):
    proc = luigi_cli("GenerateSyntheticScene", "--local-scheduler", "--kind", "probav", "--seed", "3",
                     "--lat", "-33.9", "--lon", "18.4", "--acquired", "2016-05-20T10:15:00", "--with-truth",
                     "--dest", tmp_path, config=config)
    assert_ok(proc)
    product = tmp_path / "PROBAV_L2A_20160520_101500_2_333M_V101.HDF5"
    check_toa(product)
    with rasterio.open(product.with_name(product.stem + "_truth.tif")) as truth:
        mask = truth.read(1)
        assert truth.crs.to_epsg() == 4326
        bounds = truth.bounds
    assert set(np.unique(mask)) <= {0, 1, 255} and 0 < (mask == 1).mean() < 1
    assert bounds.left < 18.4 < bounds.right and bounds.bottom < -33.9 < bounds.top


# --- the training chain (domain adaptation) ------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs(work) -> dict[str, Path]:
    """Two training pairs (one is held out to select the CycleGAN's epoch) and one test pair (Biome scene +
    Proba-V product with its true cloud mask)."""
    return {"train": write_synthetic_pairs(work / "pairs", n_pairs=2, seed=0, l8_shape=(1536, 1536),
                                           pv_shape=(128, 128), name="pairs"),
            "test": write_synthetic_pairs(work / "test_pairs", n_pairs=1, seed=1, l8_shape=(1536, 1536),
                                          pv_shape=(128, 128), name="test_pairs")}


@pytest.fixture(scope="module")
def chain(work) -> Path:
    return work / "chain"


@pytest.fixture(scope="module")
def dataset(chain, config, pairs) -> tuple[subprocess.CompletedProcess, Path]:
    proc = luigi_cli("BuildPseudoSimultaneousDataset", "--local-scheduler", "--pairs-csv", pairs["train"],
                     "--dataset-folder", chain / "data", "--landsataspv-folder", chain / "landsataspv", config=config)
    return proc, chain / "data" / "simultaneous_landsatbiomeaspv_64_32.hdf5"


def test_build_pseudo_simultaneous_dataset(dataset):
    proc, path = dataset
    assert_ok(proc)
    with h5py.File(path, "r") as h5:
        assert h5["PV"].shape[0] > 0 and h5["PV"].shape[1:] == (64, 64, 4) and h5["LU"].shape == h5["PV"].shape
        for name in ("CLOUDS", "PAIR", "ROWCOL"):
            assert h5[name].shape[0] == h5["PV"].shape[0]
        pv = h5["PV"][()]
    assert np.isfinite(pv).all() and 0 < np.median(pv) < 1


@pytest.fixture(scope="module")
def cloud_model(chain, config, pairs) -> tuple[subprocess.CompletedProcess, Path]:
    proc = luigi_cli("TrainCloudDetector", "--local-scheduler", "--l8-folder", pairs["train"].parent / "landsat8",
                     "--folder", chain / "models", "--landsataspv-folder", chain / "landsataspv", config=config)
    return proc, chain / "models" / "cloud_detection.weights.h5"


def test_train_cloud_detector(cloud_model):
    proc, weights = cloud_model
    assert_ok(proc)
    assert h5py.is_hdf5(weights)
    assert (weights.parent / "cloud_detection_history.csv").is_file()
    metrics = json.loads((weights.parent / "cloud_detection_metrics.json").read_text())
    assert metrics


@pytest.fixture(scope="module")
def generator(chain, config, dataset, cloud_model) -> tuple[subprocess.CompletedProcess, Path]:
    assert dataset[1].is_file() and cloud_model[1].is_file(), "the steps before failed"
    proc = luigi_cli("TrainCycleGAN", "--local-scheduler", "--dataset-folder", chain / "data", "--suffix", "full",
                     "--folder", chain / "models", "--weights-cloud-detection", cloud_model[1], config=config)
    return proc, chain / "models" / "genpv2l8cycle_64_8_full.weights.h5"


def test_train_cyclegan(generator):
    proc, weights = generator
    assert_ok(proc)
    assert h5py.is_hdf5(weights)
    models = weights.parent
    assert any((models / "genpv2l8cycle_64_8_full_checkpoints").iterdir())
    assert any((models / "genpv2l8cycle_64_8_full_logs").iterdir())
    assert json.loads((models / "genpv2l8cycle_64_8_full_config.json").read_text())["epochs"] == 1


def read_evaluation(folder: Path) -> dict[str, dict]:
    import csv

    with open(folder / "evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        assert 0 <= float(row["overall_accuracy"]) <= 1 and int(row["pixels"]) > 0
    assert (folder / "evaluation.md").is_file() and (folder / "evaluation.png").read_bytes()[:8] == PNG
    return {r["method"]: r for r in rows if r["product"] == "overall"}


def test_evaluate_da_pairs(chain, config, pairs, generator):
    from pvl8da.evaluation import da as evaluate_da

    dagans = json.dumps({"full": str(generator[1])})
    proc = luigi_cli("EvaluateDA", "--local-scheduler", "--pairs-csv", pairs["test"], "--dagans", dagans,
                     "--out-folder", chain / "evaluation", "--landsataspv-folder", chain / "landsataspv",
                     config=config)
    assert_ok(proc)
    overall = read_evaluation(chain / "evaluation")
    assert set(overall) == {evaluate_da.SM_METHOD, evaluate_da.RAW_METHOD, evaluate_da.LANDSAT_METHOD, "U-Net + full"}
    # The committed cloud model on the test pair's own Landsat-as-Proba-V product.
    assert float(overall[evaluate_da.LANDSAT_METHOD]["overall_accuracy"]) > 0.8


def test_evaluate_da_pv_folder(chain, config, pairs):
    from pvl8da.evaluation import da as evaluate_da

    products = pairs["test"].parent / "probav"
    proc = luigi_cli("EvaluateDA", "--local-scheduler", "--pv-folder", products, "--out-folder",
                     chain / "evaluation_pv", config=config)
    assert_ok(proc)
    overall = read_evaluation(chain / "evaluation_pv")
    assert set(overall) == {evaluate_da.SM_METHOD, evaluate_da.RAW_METHOD, "U-Net + DA"}


def test_train_default_models(work, config):
    checkpoints = work / "checkpoints"  # never the repository's checkpoints/
    committed = {p.name: sha256(p) for p in (REPO / "checkpoints").glob("*.h5")}
    proc = luigi_cli("TrainDefaultModels", "--work-dir", work / "default_models", "--ablations",
                     '["noidentity","nosegmentation"]', "--checkpoints", checkpoints, "--local-scheduler",
                     config=config)
    assert_ok(proc)
    assert {p.name: sha256(p) for p in (REPO / "checkpoints").glob("*.h5")} == committed
    assert h5py.is_hdf5(checkpoints / "cloud_detection.weights.h5")
    assert sha256(checkpoints / "dagans_pv2l8.weights.h5") == \
        sha256(work / "default_models" / "models" / "genpv2l8cycle_64_16_full_s1.weights.h5")
    overall = read_evaluation(work / "default_models" / "evaluation")
    assert {"U-Net + full", "U-Net + noidentity", "U-Net + nosegmentation"} <= set(overall)


def test_run_da_seeds(work, config):
    """Two configurations × two seeds on TrainDefaultModels' tiny chain (its pairs and cloud model are reused
    when that test ran first; its seed-1 GANs, trained for one epoch, are not asked for): a table of mean ± sd
    over the seeds and the per-epoch figure."""
    out = work / "default_models"
    proc = luigi_cli("RunDASeeds", "--work-dir", out, "--seeds", "[2,3]", "--ablations", '["full","nosegmentation"]',
                     "--gan-epochs", "2", "--local-scheduler", config=config)
    assert_ok(proc)
    with open(out / "seeds" / "epochs.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    assert [(r["config"], r["seed"], r["epoch"]) for r in epochs] == [
        (c, s, e) for c in ("full", "nosegmentation") for s in ("2", "3") for e in ("1", "2")]
    for config_name, seed in {(r["config"], r["seed"]) for r in epochs}:
        run = [r for r in epochs if (r["config"], r["seed"]) == (config_name, seed)]
        best = max(run, key=lambda r: float(r["val_agreement"]))  # the first of equal ones, as the trainer keeps
        assert [r["selected"] for r in run] == [str(r is best) for r in run]
    table = (out / "seeds" / "summary.md").read_text()
    assert "| full | 2 |" in table and " ± " in table and "| no adaptation | 1 |" in table
    assert (out / "seeds" / "epochs.png").read_bytes().startswith(PNG)


# --- FCD -----------------------------------------------------------------------------------------------


def test_run_fcd_paper(work):
    """The README's two forms at once: ``--root``/``--out-dir`` on the command line, and a config derived
    from configs/fcd_small.cfg (synthetic scenes written to the root) with smaller sizes and iterations."""
    config = write_config(work / "fcd.cfg", TINY_FCD,
                          {"RunFCDPaper": {"root": str(work / "unused_root"), "out_dir": str(work / "unused_out")}},
                          base=REPO / "configs" / "fcd_small.cfg")
    root, out = work / "biome", work / "fcd_output"
    proc = luigi_cli("RunFCDPaper", "--local-scheduler", "--root", root, "--out-dir", out, config=config)
    assert_ok(proc)
    assert not (work / "unused_root").exists() and not (work / "unused_out").exists()
    assert len(list(root.glob("*/*/*_MTL.txt"))) == 12
    for split in ("train", "val", "test"):
        assert h5py.is_hdf5(out / "patches" / f"{split}.h5")
    for folder in ("fcd", "fcd_plus", "fcd_plus_finetune", "supervised"):
        assert (out / folder / "done.json").is_file()
    assert list((out / "fcd_masks" / "scenes").glob("*_fcd.tif"))
    table = (out / "evaluation" / "table.md").read_text()
    for method in ("FCD", "FCD+", "FCD+ calibrated", "FCD+1%", "Supervised", "Quality-band cloud flag"):
        assert f"| {method} |" in table
    assert (out / "evaluation" / "examples.png").read_bytes()[:8] == PNG


def test_run_fcd_seeds(work):
    """configs/fcd_seeds.cfg with the tiny sizes: two synthetic Biome sets (data seeds) x two training seeds; the data
    seed changes the scenes, the training seed the split; one table of mean ± sd and each run's row."""
    out = work / "fcd_seeds"
    config = write_config(work / "fcd_seeds.cfg", TINY_FCD,
                          {"RunFCDSeeds": {"work_dir": str(out), "data_seeds": "[1, 2]", "seeds": "[0, 1]"}},
                          base=REPO / "configs" / "fcd_seeds.cfg")
    assert_ok(luigi_cli("RunFCDSeeds", "--local-scheduler", config=config))
    first = [sorted((out / f"biome_d{d}").glob("*/*/*_B4.TIF"))[0] for d in (1, 2)]
    with rasterio.open(first[0]) as a, rasterio.open(first[1]) as b:
        assert not np.array_equal(a.read(1), b.read(1))

    def split(run: str) -> list[str]:
        with open(out / run / "patches" / "assignment.csv", newline="") as f:
            return [r["split"] for r in csv.DictReader(f)]

    assert split("d1_s0") != split("d1_s1")
    with open(out / "seeds" / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["data_seed"], r["seed"]) for r in rows} == {("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")}
    with open(out / "seeds" / "summary.csv", newline="") as f:
        fcd = next(r for r in csv.DictReader(f) if r["biome"] == "all" and r["method"] == "FCD")
    overall = [float(r["accuracy"]) for r in rows if r["biome"] == "all" and r["method"] == "FCD"]
    assert int(fcd["runs"]) == 4 and float(fcd["accuracy_mean"]) == pytest.approx(np.mean(overall))
    table = (out / "seeds" / "summary.md").read_text()
    assert "| FCD | 4 |" in table and "FCD > flag" in table
    assert (out / "seeds" / "seeds.png").read_bytes()[:8] == PNG


# --- make demo -----------------------------------------------------------------------------------------


def test_demo(work, config):
    """``make demo``'s command (its sizes are fixed in tasks/demo.py: about 45 s on 2 cores)."""
    out = work / "demo_output"
    committed = {p.name: sha256(p) for p in (REPO / "checkpoints").glob("*.h5")}
    proc = luigi_cli("Demo", "--local-scheduler", "--out", out, config=config)
    assert_ok(proc)
    assert {p.name: sha256(p) for p in (REPO / "checkpoints").glob("*.h5")} == committed
    text = (out / "DEMO.md").read_text()
    listed = [Path(path) for path in re.findall(r"`(/[^`]+)`", text)]
    assert len(listed) >= 7 and all(path.exists() for path in listed), listed
    assert "| overall | U-Net + full |" in text
    for name in ("cloud_detection.weights.h5", "dagans_pv2l8.weights.h5"):
        assert h5py.is_hdf5(out / "training" / "checkpoints" / name)
    [adapted] = (out / "adapted").glob("*_ADAPTED.HDF5")
    with h5py.File(adapted, "r") as h5:
        check_probability(h5["CM_PVDAGANS"][()])
