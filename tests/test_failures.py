"""Failures that show, outputs that are never stale, nothing half-done: exit codes, provenance, a full disk,
outputs committed together, stale temporary files, input errors that are not retried."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import h5py
import luigi
import pytest

from pvl8da.storage import atomic, provenance
from pvl8da.training.cyclegan_config import CycleGANConfig, output_paths
from pvl8da.errors import InputError
from pvl8da.synthetic import write_landsat8_scene, write_probav_product
from tasks.base import OutputMadeDifferently
from tasks.batch import InferenceAll
from tasks.convert import ConvertPV
from tasks.inference import InferenceClouds, InferenceDA
from tasks.training import TrainCycleGAN

REPO = Path(__file__).resolve().parents[1]
CLOUD = REPO / "checkpoints" / "cloud_detection.weights.h5"


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> Path:
    return write_probav_product(tmp_path_factory.mktemp("pv"), shape=(64, 64), seed=5)


def _cli(*args, config: str | None) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    if config:
        env["LUIGI_CONFIG_PATH"] = config
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "luigi", "--module", "tasks", *map(str, args), "--local-scheduler"],
                          cwd=REPO, env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True,
                          timeout=300)
    return proc, time.monotonic() - start


def test_failures_exit_non_zero_and_input_errors_are_not_retried(tmp_path):
    """No configuration: a failure exits non-zero. With configs/luigi.cfg (3 retries, 120 s apart) a bad
    input stops at once instead of being retried for four minutes."""
    bad = tmp_path / "notanhdf5.HDF5"
    bad.write_text("not HDF5")
    proc, _ = _cli("InferenceDA", "--pvimage", bad, "--image-dest", tmp_path / "x.HDF5", config=None)
    assert proc.returncode == 35, proc.stderr[-3000:]
    assert "not an HDF5 file" in proc.stderr
    proc, seconds = _cli("ConvertPV", "--l8img", tmp_path / "LC08_nope", "--outfolder", tmp_path / "out",
                         config=str(REPO / "configs" / "luigi.cfg"))
    assert proc.returncode != 0 and seconds < 60, (proc.returncode, seconds)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.HDF5").exists()


def _build(task) -> bool:
    return luigi.build([task], local_scheduler=True, log_level="WARNING")


def test_outputs_made_differently_are_refused_then_overwritten(product, tmp_path):
    import keras

    from pvl8da.models.da import build_cloud_unet

    weights = tmp_path / "unet.weights.h5"
    weights.write_bytes(CLOUD.read_bytes())
    dest = tmp_path / "out.HDF5"
    first = InferenceDA(pvimage=str(product), image_dest=str(dest), cloud_detection_weights=str(weights),
                        no_adaptation=True)
    assert _build(first) and first.complete()
    made = dest.stat().st_mtime_ns
    keras.utils.set_random_seed(1)
    build_cloud_unet().save_weights(weights)  # the same path, other weights
    with pytest.raises(OutputMadeDifferently, match="cloud_detection_weights: the file .* differs.*--overwrite"):
        first.complete()
    assert not _build(first) and dest.stat().st_mtime_ns == made
    with pytest.raises(OutputMadeDifferently, match="--no-adaptation: made with True, now False"):
        InferenceDA(pvimage=str(product), image_dest=str(dest), cloud_detection_weights=str(weights)).complete()
    again = InferenceDA(pvimage=str(product), image_dest=str(dest), cloud_detection_weights=str(weights),
                        no_adaptation=True, overwrite=True)
    assert not again.complete() and _build(again) and again.complete() and first.complete()
    assert dest.stat().st_mtime_ns != made


def test_an_output_made_before_an_option_existed_counts_as_made_with_its_default(product, tmp_path):
    dest = tmp_path / "out.HDF5"
    task = InferenceDA(pvimage=str(product), image_dest=str(dest), cloud_detection_weights=str(CLOUD),
                       no_adaptation=True)
    assert _build(task)
    record = provenance.read_hdf5(dest)
    assert record["parameters"].pop("precision") == "float32"
    with h5py.File(dest, "r+") as f:  # as written before --precision existed
        provenance.write_hdf5(f, record)
    assert task.complete()
    with pytest.raises(OutputMadeDifferently, match="--precision: made with float32 .the default then., now bfloat16"):
        InferenceDA(pvimage=str(product), image_dest=str(dest), cloud_detection_weights=str(CLOUD),
                    no_adaptation=True, precision="bfloat16").complete()


def test_conversion_of_another_type_is_not_taken_for_done(tmp_path):
    scene = write_landsat8_scene(tmp_path, shape=(96, 96), seed=3, collection=0, with_biome_mask=True,
                                 with_pan=False)
    plain = ConvertPV(l8img=str(scene), outfolder=str(tmp_path / "pv"))
    assert _build(plain)
    biome = ConvertPV(l8img=str(scene), outfolder=str(tmp_path / "pv"), type_product="biome")
    with pytest.raises(OutputMadeDifferently, match="--type-product: made with landsat8, now biome"):
        biome.complete()
    overwrite = ConvertPV(l8img=str(scene), outfolder=str(tmp_path / "pv"), type_product="biome", overwrite=True)
    assert _build(overwrite)
    with h5py.File(overwrite.output()["product"].path, "r") as f:
        assert "CM_RESAMPLED" in f


def test_cyclegan_run_resumes_only_with_its_own_settings(tmp_path):
    from pvl8da.training.cyclegan import check_resumable, discard_run

    config = CycleGANConfig(suffix="s", epochs=6, lr=5e-4)
    paths = output_paths(tmp_path, config)
    paths["checkpoints"].mkdir()
    paths["config"].write_text(json.dumps({**asdict(config), "provenance": {"task": "TrainCycleGAN"}}))
    check_resumable(tmp_path, CycleGANConfig(suffix="s", epochs=10, lr=5e-4))  # more epochs: fine
    with pytest.raises(InputError, match=r"lr: 0.0005 there, 0.0001 now.*--overwrite"):
        check_resumable(tmp_path, CycleGANConfig(suffix="s", epochs=6))
    discard_run(tmp_path, config)
    assert not paths["checkpoints"].exists() and not paths["config"].exists()
    # a finished run is not "complete" for other hyper-parameters
    paths["generator"].write_bytes(b"weights")
    paths["config"].write_text(json.dumps({**asdict(config), "provenance": {
        "task": "TrainCycleGAN", "parameters": {"lr": "0.0005"}, "files": {}}}))
    task = TrainCycleGAN(folder=str(tmp_path), suffix="s", epochs=6, lr=1e-4,
                         dataset_folder=str(tmp_path), weights_cloud_detection=str(CLOUD))
    with pytest.raises(OutputMadeDifferently, match="--lr: made with 0.0005, now 0.0001"):
        task.complete()


def test_destination_folder_writes_nothing(product, tmp_path):
    dest = tmp_path / "a_folder.HDF5"
    dest.mkdir()
    task = InferenceDA(pvimage=str(product), image_dest=str(dest))
    with pytest.raises(InputError, match="is an existing folder"):
        task.complete()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.HDF5"]


def test_outputs_are_committed_together(tmp_path):
    paths = [tmp_path / "a.HDF5", tmp_path / "a_clouds.tif"]
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_outputs(*paths) as temps:
            temps[1].write_text("cog")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="nothing was written"):
        with atomic.atomic_outputs(*paths) as temps:
            temps[1].write_text("cog")
    assert list(tmp_path.iterdir()) == []
    with atomic.atomic_outputs(*paths) as temps:
        for t in temps:
            t.write_text(t.suffix)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.HDF5", "a_clouds.tif"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path, monkeypatch):
    tag = atomic._owner_tag().rsplit("-", 1)[0]
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.{tag}-{dead}.abc123.partial.HDF5"
    running = tmp_path / f".out.{tag}-{alive}.def456.partial.HDF5"
    other_host = tmp_path / f".out.elsewhere-{dead}.ghi789.partial.HDF5"
    other_output = tmp_path / f".out2.{tag}-{dead}.jkl012.partial.HDF5"
    for path in (stale, running, other_host, other_output):
        path.write_text("partial")
    with atomic.atomic_path(tmp_path / "out.HDF5") as tmp:
        tmp.write_text("new")
    assert not stale.exists() and running.exists() and other_host.exists() and other_output.exists()
    monkeypatch.setattr(atomic.tempfile, "gettempdir", lambda: str(tmp_path))
    scratch = tmp_path / f"pvl8da-{tag}-{dead}.xyz"
    scratch.mkdir()
    with atomic.scratch_dir() as made:
        assert made.parent == tmp_path and made.name.startswith(f"pvl8da-{atomic._owner_tag()}.")
    assert not scratch.exists() and not made.exists()


def test_scene_folder_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic.atomic_dir(tmp_path / "scene") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "scene").stat().st_mode & 0o777 == 0o755


FULL_DISK = textwrap.dedent("""
    import errno, resource, signal, sys
    from pathlib import Path
    import pvl8da.inference.products as inference
    dest = Path(sys.argv[2])
    if sys.argv[3] == "rlimit":  # no tmpfs: a file-size limit fails the writes the same way
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, resource.RLIM_INFINITY))
    if sys.argv[4] == "no-precheck":
        inference.require_free_space = lambda *args: None
    try:
        inference.infer_da(sys.argv[1], dest / "out.HDF5", sys.argv[5], sys.argv[6])
    except OSError as exc:
        print("OSError", exc.errno)
    print("alive", sorted(p.name for p in dest.iterdir()))
""")


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs where the test may mount one (root), else a folder with a 2 MB file-size limit."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                            capture_output=True).returncode == 0:
        yield mount, "tmpfs"
        subprocess.run(["umount", str(mount)], check=False)
    else:
        yield mount, "rlimit"


def test_full_disk_is_an_error_not_a_crash(tmp_path, small_disk):
    folder, how = small_disk
    big = write_probav_product(tmp_path / "big", shape=(1200, 1200), seed=9)
    weights = [str(CLOUD), str(REPO / "checkpoints" / "dagans_pv2l8.weights.h5")]
    for precheck in ("precheck", "no-precheck"):
        proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(big), str(folder), how, precheck, *weights],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        assert proc.returncode == 0, (precheck, proc.returncode, proc.stderr[-3000:])
        assert "OSError" in proc.stdout and "alive []" in proc.stdout, (precheck, proc.stdout)


def test_inference_clouds_refuses_a_probav_product(product, tmp_path):
    with pytest.raises(InputError, match="a Proba-V L2A product .* run InferenceDA"):
        InferenceClouds(image=str(product), image_dest=str(tmp_path / "x.HDF5")).complete()


def test_inference_all_refuses_two_products_for_one_destination(product, tmp_path):
    twin = tmp_path / "other" / product.name
    twin.parent.mkdir()
    twin.write_bytes(product.read_bytes())
    listing = tmp_path / "products.txt"
    listing.write_text(f"{product}\n{twin}\n")
    with pytest.raises(InputError, match="would both be written to"):
        InferenceAll(products=str(listing), dest=str(tmp_path / "adapted")).requires()


def test_read_error_mid_run_names_the_file(tmp_path):
    from pvl8da.sensors.probav import ProbaVProduct

    path = write_probav_product(tmp_path, shape=(600, 600), seed=3)
    with h5py.File(path, "r") as f:
        chunk = f["LEVEL2A/RADIOMETRY/NIR/TOA"].id.get_chunk_info(3)
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset:chunk.byte_offset + 200] = bytes(b ^ 0xFF for b in data[chunk.byte_offset:chunk.byte_offset + 200])
    path.write_bytes(bytes(data))
    with ProbaVProduct(path) as product, pytest.raises(InputError, match=f"{path}: cannot read .*NIR/TOA.*corrupt"):
        product.read_toa()
