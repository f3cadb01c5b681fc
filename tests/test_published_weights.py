"""``published`` weights: downloaded once into the XDG cache, verified by SHA-256, from a configurable base URL."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pvl8da.storage import published
from pvl8da.storage.download import RetryPolicy
from pvl8da.errors import InputError
from pvl8da.storage.published import MANIFEST, PublishedFile, PublishedWeightsError, resolve_weights
from pvl8da.synthetic import write_probav_product
from tasks.inference import require_weights

REPO = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(attempts=2, backoff_s=0.01, max_backoff_s=0.02, timeout_s=5)
BODY = b"not really a generator, but the bytes the manifest expects"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty XDG cache home; the folder the published weights go to is ``<cache>/pvl8da/weights``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(published.BASE_URL_ENV, raising=False)
    return tmp_path / "cache" / "pvl8da" / "weights"


@pytest.fixture
def fake_manifest(monkeypatch) -> PublishedFile:
    """A manifest whose ``dagans`` file is ``full.hdf5`` holding :data:`BODY`."""
    item = PublishedFile("full.hdf5", hashlib.sha256(BODY).hexdigest())
    monkeypatch.setitem(MANIFEST, "dagans", item)
    return item


def _requests(server, name: str) -> int:
    return sum(path.endswith(name) for path, _, _ in server.requests)


def test_download_is_verified_and_cached(server, cache, fake_manifest, monkeypatch):
    server.files["/mirror/checkpoints/full.hdf5"] = BODY
    base = f"{server.url}/mirror/checkpoints"
    path = resolve_weights("published", "dagans", base_url=base, policy=FAST)
    assert path == cache / "full.hdf5" and path.read_bytes() == BODY
    assert _requests(server, "full.hdf5") == 1

    # a second use reads the cache, without a request
    assert resolve_weights("published", "dagans", base_url=base, policy=FAST) == path
    assert _requests(server, "full.hdf5") == 1

    # a corrupt cached file is fetched again, here from the base URL of the environment variable
    path.write_bytes(b"truncated")
    monkeypatch.setenv(published.BASE_URL_ENV, base + "/")
    assert resolve_weights("published", "dagans", policy=FAST).read_bytes() == BODY
    assert _requests(server, "full.hdf5") == 2
    assert sorted(p.name for p in cache.iterdir()) == ["full.hdf5"]


def test_paths_are_not_resolved(cache):
    assert resolve_weights("models/gen.weights.h5", "dagans") == Path("models/gen.weights.h5")
    assert resolve_weights(Path("published"), "dagans") == Path("published")  # a Path is a path
    assert not cache.exists()


def test_wrong_content_is_a_clear_error_and_leaves_nothing(server, cache, fake_manifest):
    server.files["/w/full.hdf5"] = BODY + b" tampered"
    with pytest.raises(PublishedWeightsError) as info:
        resolve_weights("published", "dagans", base_url=f"{server.url}/w", policy=FAST)
    message = str(info.value)
    assert "checksum mismatch" in message and f"{server.url}/w/full.hdf5" in message
    assert str(cache / "full.hdf5") in message and fake_manifest.sha256 in message
    assert list(cache.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_names_url_and_cache_path(cache, fake_manifest):
    base = f"http://alice:s3cret@127.0.0.1:{_closed_port()}/weights"
    with pytest.raises(PublishedWeightsError) as info:
        resolve_weights("published", "dagans", base_url=base, policy=FAST)
    message = str(info.value)
    assert base.replace("alice:s3cret@", "") + "/full.hdf5" in message and "s3cret" not in message
    assert f"place it at {cache / 'full.hdf5'}" in message
    assert not cache.exists() or list(cache.iterdir()) == []


def test_manifest_matches_the_reference_weights(reference_dir):
    for item in MANIFEST.values():
        file = reference_dir / "weights" / item.name
        assert hashlib.sha256(file.read_bytes()).hexdigest() == item.sha256, file


def test_inference_da_cli_with_published_weights(server, reference_dir, tmp_path):
    for item in MANIFEST.values():
        server.files[f"/pvl8dagans/checkpoints/{item.name}"] = (reference_dir / "weights" / item.name).read_bytes()
    product = write_probav_product(tmp_path / "in", shape=(64, 64), seed=5)
    dest = tmp_path / "out.HDF5"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PVL8DA_WEIGHTS_URL": "http://127.0.0.1:9/nowhere"}
    done = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "tasks", "InferenceDA", "--local-scheduler",
         "--pvimage", str(product), "--image-dest", str(dest), "--cloud-detection-weights", "published",
         "--dagans-weights", "published", "--weights-base-url", f"{server.url}/pvl8dagans/checkpoints"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with h5py.File(dest) as f:
        clouds = f["CM_PVDAGANS"][()]
    assert clouds.shape == (64, 64) and np.all((clouds == -1) | ((clouds >= 0) & (clouds <= 1)))
    cached = tmp_path / "cache" / "pvl8da" / "weights"
    assert sorted(p.name for p in cached.iterdir()) == sorted(item.name for item in MANIFEST.values())
    assert {path for path, _, _ in server.requests} == {f"/pvl8dagans/checkpoints/{item.name}"
                                                        for item in MANIFEST.values()}


def test_require_weights_accepts_published_and_suggests_it(tmp_path):
    require_weights(cloud_detection_weights="published", dagans_weights="published")
    with pytest.raises(InputError, match=r"gen\.weights\.h5 not found.*--dagans-weights published"):
        require_weights(dagans_weights=str(tmp_path / "gen.weights.h5"))
