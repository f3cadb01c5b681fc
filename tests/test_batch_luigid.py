"""ConvertAll on Luigi's central scheduler: a luigid on loopback and two worker processes."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import datetime as dt
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import h5py
import pytest

from pvl8da.errors import InputError
from pvl8da.synthetic import write_landsat8_scene, write_probav_product
from tasks.batch import ConvertAll, InferenceAll, list_inputs

REPO = Path(__file__).resolve().parents[1]
LUIGID = Path(sys.executable).with_name("luigid")
DONE = re.compile(r"\bdone\s+ConvertPV\(l8img=([^,)]+)")
RUNNING = re.compile(r"\brunning\s+ConvertPV\(")
WORKER_TIMEOUT_S = 240


def _env() -> dict[str, str]:
    return dict(os.environ, LUIGI_CONFIG_PATH=str(REPO / "configs" / "luigi.cfg"),
                no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture
def luigid(tmp_path):
    """A central scheduler on a free loopback port; always stopped at teardown."""
    port = _free_port()
    (tmp_path / "luigid-logs").mkdir()
    log = open(tmp_path / "luigid.log", "wb")
    proc = subprocess.Popen([str(LUIGID), "--port", str(port), "--address", "127.0.0.1",
                             "--state-path", str(tmp_path / "luigid-state.pickle"),
                             "--logdir", str(tmp_path / "luigid-logs")],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"luigid did not start: {(tmp_path / 'luigid.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        assert proc.poll() is not None


def _worker(port: int, scenes: Path, out: Path, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "luigi", "--module", "tasks", "ConvertAll",
               "--scenes", str(scenes), "--outfolder", str(out), "--resolution", "333M",
               "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "1",
               "--ConvertPV-threads", "1"]
    return subprocess.Popen(command, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=_env(), cwd=REPO)


def _finish(procs: list[subprocess.Popen]) -> list[int]:
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=WORKER_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            codes.append(-9)
        finally:
            proc.stdout and proc.stdout.close()
    return codes


@pytest.fixture(scope="module")
def four_scenes(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("scenes")
    return [write_landsat8_scene(root, shape=(96, 96), seed=seed, collection=1 + seed % 2, with_pan=False,
                                 lat=(-33.0, 12.0, 47.0, 61.0)[seed], lon=(151.0, -70.0, 8.0, 25.0)[seed])
            for seed in range(4)]


def test_two_workers_share_the_batch_and_a_rerun_does_nothing(luigid, four_scenes, tmp_path):
    scene_list = tmp_path / "scenes.txt"
    scene_list.write_text("# four synthetic scenes\n" + "\n".join(map(str, four_scenes)) + "\n")
    out = tmp_path / "products"
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    codes = _finish([_worker(luigid, scene_list, out, log) for log in logs])
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in texts)

    done = Counter(m for text in texts for m in DONE.findall(text))
    assert done == Counter({str(s): 1 for s in four_scenes}), done
    products = sorted(out.glob("*_333M.HDF5"))
    assert [p.name for p in products] == sorted(f"{s.name}_333M.HDF5" for s in four_scenes)
    for product in products:
        with h5py.File(product, "r") as h5:
            for band in ("BLUE", "RED", "NIR", "SWIR"):
                toa = h5[f"LEVEL2A/RADIOMETRY/{band}/TOA"]
                assert toa.dtype == "int16" and toa.ndim == 2 and min(toa.shape) > 0
                assert (toa[()] > -1000).any()
            assert h5.attrs["image"] == product.name[: -len("_333M.HDF5")]
    stamps = {p: p.stat().st_mtime_ns for p in products}

    again = tmp_path / "rerun.log"
    assert _finish([_worker(luigid, scene_list, out, again)]) == [0]
    rerun = again.read_text()
    assert not RUNNING.search(rerun), rerun[-3000:]
    assert {p: p.stat().st_mtime_ns for p in products} == stamps


def test_inputs_from_a_list_file_or_a_glob(tmp_path):
    for name in ("A", "B", "C"):
        (tmp_path / name).mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("C\n\n# comment\nA  # first\nC\n")
    assert list_inputs(str(listing)) == [tmp_path / "C", tmp_path / "A"]
    assert list_inputs(str(tmp_path / "[AB]")) == [tmp_path / "A", tmp_path / "B"]
    with pytest.raises(InputError, match="no inputs"):
        list_inputs(str(tmp_path / "nothing*"))
    wrapper = ConvertAll(scenes=str(listing), outfolder=str(tmp_path / "out"))
    assert [(t.l8img, t.outfolder, t.resolution) for t in wrapper.requires()] == \
        [(str(tmp_path / "C"), str(tmp_path / "out"), "333M"), (str(tmp_path / "A"), str(tmp_path / "out"), "333M")]


def test_inference_all_runs_inference_da_on_every_product(tmp_path, reference_dir):
    import luigi

    weights = reference_dir / "weights"
    products = [write_probav_product(tmp_path / "pv", shape=(48, 40), seed=seed, acquired=when)
                for seed, when in ((1, dt.datetime(2016, 5, 20, 10, tzinfo=dt.timezone.utc)),
                                   (2, dt.datetime(2016, 5, 21, 10, tzinfo=dt.timezone.utc)))]
    config = luigi.configuration.get_config()
    config.set("InferenceDA", "cloud_detection_weights", str(weights / "cloud_detection_l8.hdf5"))
    config.set("InferenceDA", "dagans_weights", str(weights / "full.hdf5"))
    try:
        wrapper = InferenceAll(products=str(tmp_path / "pv" / "PROBAV_*.HDF5"), dest=str(tmp_path / "adapted"))
        assert luigi.build([wrapper], local_scheduler=True, log_level="WARNING")
    finally:
        config.remove_option("InferenceDA", "cloud_detection_weights")
        config.remove_option("InferenceDA", "dagans_weights")
    for product in products:
        adapted = tmp_path / "adapted" / f"{product.stem}_ADAPTED.HDF5"
        with h5py.File(adapted, "r") as f:
            clouds = f["CM_PVDAGANS"][()]
        assert clouds.shape == (48, 40) and ((clouds >= 0) & (clouds <= 1)).mean() > 0.5
