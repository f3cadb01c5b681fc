"""Scene downloads against a loopback HTTP server: a Biome archive and a fake STAC API."""
from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import logging
import os
import re
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fake_http import FakeServer
from pvl8da.storage import download
from pvl8da.storage.download import DownloadError, NotFoundError, RetryPolicy
from pvl8da.errors import InputError
from pvl8da.sensors.landsat8 import open_scene
from pvl8da.synthetic import write_landsat8_scene

SCENE = "LC81390292014135LGN00"
FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02, timeout_s=5)


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    """A small synthetic pre-collection Biome scene folder: B1-B11, BQA, MTL, fixedmask."""
    return write_landsat8_scene(tmp_path_factory.mktemp("src"), shape=(64, 64), seed=3, collection=0,
                                with_biome_mask=True, scene_id=SCENE)


def _tar_gz(folder: Path, prefix: str = "BC", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=f"{prefix}/{folder.name}")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _assert_same_scene(got: Path, want: Path) -> None:
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
    for path in want.iterdir():
        assert (got / path.name).read_bytes() == path.read_bytes()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_biome_download_extracts_the_scene_folder(server, scene_dir, tmp_path):
    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    out = download.download_biome_scene(SCENE, tmp_path / "l8", f"{server.url}/cca", policy=FAST)
    assert out == tmp_path / "l8" / SCENE
    _assert_same_scene(out, scene_dir)
    assert _leftovers(tmp_path / "l8") == [SCENE]
    scene = open_scene(out, "biome")
    scene.check_files()
    assert scene.toa(4).shape == (64, 64)
    assert scene.labels().shape == (64, 64)


def test_biome_checksum_sidecar_is_verified(server, scene_dir, tmp_path):
    archive = _tar_gz(scene_dir)
    server.files[f"/cca/{SCENE}.tar.gz"] = archive
    server.files[f"/cca/{SCENE}.tar.gz.sha256"] = b"0" * 64 + b"  archive.tar.gz\n"
    with pytest.raises(InputError, match="sha256 checksum mismatch"):
        download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST)
    assert _leftovers(tmp_path) == []
    server.files[f"/cca/{SCENE}.tar.gz.sha256"] = hashlib.sha256(archive).hexdigest().encode()
    download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST)
    assert _leftovers(tmp_path) == [SCENE]


def test_interrupted_download_resumes_with_range(server, scene_dir, tmp_path):
    path = f"/cca/{SCENE}.tar.gz"
    server.files[path] = _tar_gz(scene_dir)
    server.cut_once.add(path)
    out = download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    _assert_same_scene(out, scene_dir)
    ranges = [r for p, r, _ in server.requests if p == path]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={len(server.files[path]) // 2}-"


def test_server_without_range_support_restarts_from_zero(server, scene_dir, tmp_path):
    path = f"/cca/{SCENE}.tar.gz"
    server.files[path] = _tar_gz(scene_dir)
    server.cut_once.add(path)
    server.no_range.add(path)
    out = download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    _assert_same_scene(out, scene_dir)
    assert [p for p, _, _ in server.requests].count(path) == 2


def test_server_errors_are_retried(server, scene_dir, tmp_path):
    path = f"/cca/{SCENE}.tar.gz"
    server.files[path] = _tar_gz(scene_dir)
    server.errors[path] = 2
    download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    assert [p for p, _, _ in server.requests].count(path) == 3


def test_persistent_server_errors_give_up(server, scene_dir, tmp_path):
    path = f"/cca/{SCENE}.tar.gz"
    server.files[path] = _tar_gz(scene_dir)
    server.errors[path] = 10
    with pytest.raises(DownloadError, match="giving up after 3 attempts: HTTP 503"):
        download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("corruption", ["garbage", "truncated", "flipped", "gzip trailer"])
def test_corrupt_archive_is_rejected(server, scene_dir, tmp_path, corruption):
    archive = _tar_gz(scene_dir)
    body = {"garbage": b"<html>not an archive</html>" * 50,
            "truncated": archive[: len(archive) * 2 // 3],
            "flipped": archive[:-40] + bytes(b ^ 0xFF for b in archive[-40:]),
            "gzip trailer": archive[:-8] + bytes(b ^ 0xFF for b in archive[-8:])}[corruption]
    server.files[f"/cca/{SCENE}.tar.gz"] = body
    with pytest.raises(InputError, match="corrupt|not a readable"):
        download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    assert _leftovers(tmp_path) == []


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ok = tarfile.TarInfo(f"{SCENE}/{SCENE}_MTL.txt")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"END"))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize("member, data, reason", [
    (_member(f"../{SCENE}_B1.TIF"), b"evil", "'..'"),
    (_member(f"{SCENE}/../../escape.txt"), b"evil", "'..'"),
    (_member("/tmp/absolute.txt"), b"evil", "absolute path"),
    (_member(f"{SCENE}/{SCENE}_B2.TIF", tarfile.SYMTYPE, "/etc/passwd"), b"", "symbolic link"),
    (_member(f"{SCENE}/{SCENE}_B3.TIF", tarfile.LNKTYPE, "/etc/passwd"), b"", "hard link"),
    (_member(f"{SCENE}/dev", tarfile.CHRTYPE), b"", "device"),
])
def test_unsafe_tar_members_are_rejected(server, tmp_path, member, data, reason):
    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_with(member, data)
    dest = tmp_path / "l8"
    with pytest.raises(InputError, match=f"refusing member .*{reason}"):
        download.download_biome_scene(SCENE, dest, f"{server.url}/cca", policy=FAST, sidecar=False)
    assert _leftovers(dest) == []
    assert _leftovers(tmp_path) == ["l8"]


def test_unsafe_zip_members_are_rejected(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/file.txt", "fine")
        link = zipfile.ZipInfo("ok/link")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match="refusing member 'ok/link': not a regular file"):
        download.safe_extract(archive, out)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../up.txt", "evil")
    with pytest.raises(InputError, match="'..'"):
        download.safe_extract(archive, out)
    assert not (tmp_path / "up.txt").exists()


def test_archive_past_the_size_limit_is_refused(server, scene_dir, tmp_path):
    zeros = f"BC/{SCENE}/zeros.bin"
    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir, extra={zeros: bytes(64 << 10)})
    limit = sum(p.stat().st_size for p in scene_dir.iterdir()) + 1024
    with pytest.raises(InputError, match=rf"{SCENE}\.tar\.gz: refusing member '{zeros}': .* limit of {limit} bytes"):
        download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False,
                                      max_archive_bytes=limit)
    assert _leftovers(tmp_path) == []


def test_huge_member_header_is_refused_before_writing(tmp_path):
    """A few hundred bytes of .tar.gz whose member claims 5 GiB: refused by the default limit, nothing written."""
    huge = tarfile.TarInfo(f"{SCENE}/{SCENE}_B8.TIF")
    huge.size = 5 << 30
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(huge.tobuf() + bytes(4096)))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=rf"bomb\.tar\.gz: refusing member '{huge.name}': .*"
                                         rf"limit of {download.MAX_ARCHIVE_BYTES} bytes \(4 GiB"):
        download.safe_extract(archive, out)
    assert list(out.rglob("*")) == []


def test_member_longer_than_its_header_is_stopped_at_the_limit(tmp_path, monkeypatch):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("small.bin")
        info.size = 10
        tar.addfile(info, io.BytesIO(bytes(10)))
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, member: io.BytesIO(bytes(64 << 10)))
    with pytest.raises(InputError, match="refusing member 'small.bin': .*limit of 1000 bytes"):
        download.safe_extract(archive, tmp_path, max_bytes=1000)
    assert (tmp_path / "small.bin").stat().st_size == 0


def _truncated_tar_gz(tmp_path: Path) -> tuple[Path, str]:
    noise = np.random.default_rng(1).integers(0, 256, 64 << 10, dtype=np.uint8).tobytes()
    archive = tmp_path / "scene.tar.gz"
    archive.write_bytes(_tar_gz(tmp_path, extra={"BC/noise.bin": noise})[: 40 << 10])
    return archive, "cannot read member 'BC/noise.bin'"


def _truncated_in_a_header(tmp_path: Path) -> tuple[Path, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in ("first.txt", "second.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    archive = tmp_path / "scene.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue(), compresslevel=0)[: 10 + 5 + 1024 + 100])
    return archive, "cannot read the member after 'first.txt'"


def _bad_crc_zip(tmp_path: Path) -> tuple[Path, str]:
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/data.bin", bytes(range(256)) * 16)
    data = bytearray(archive.read_bytes())
    data[30 + len("ok/data.bin") + 100] ^= 0xFF
    archive.write_bytes(bytes(data))
    return archive, "cannot read member 'ok/data.bin'"


@pytest.mark.parametrize("make", [_truncated_tar_gz, _truncated_in_a_header, _bad_crc_zip],
                         ids=["truncated-gzip", "truncated-header", "zip-crc"])
def test_read_errors_name_the_archive_and_member(tmp_path, make):
    archive, where = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=rf"^{re.escape(str(archive))}: corrupt or truncated archive: {where} \("):
        download.safe_extract(archive, out)


def test_archive_of_another_scene_is_rejected(server, scene_dir, tmp_path):
    server.files["/cca/LC80000002014001LGN00.tar.gz"] = _tar_gz(scene_dir)
    with pytest.raises(InputError, match="no LC80000002014001LGN00_MTL.txt"):
        download.download_biome_scene("LC80000002014001LGN00", tmp_path, f"{server.url}/cca",
                                      policy=FAST, sidecar=False)
    assert _leftovers(tmp_path) == []


def test_unknown_biome_scene_is_a_clear_error(server, tmp_path):
    with pytest.raises(NotFoundError, match=f"Biome scene {SCENE} not found.*404"):
        download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST)
    assert _leftovers(tmp_path) == []


def test_bad_scene_id_is_refused_before_any_request(server, tmp_path):
    with pytest.raises(InputError, match="not a Landsat scene ID"):
        download.download_biome_scene("../etc", tmp_path, server.url, policy=FAST)
    assert server.requests == []


def test_credentials_are_sent_but_never_logged(server, scene_dir, tmp_path, caplog):
    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    server.errors[f"/cca/{SCENE}.tar.gz"] = 1
    base = server.url.replace("http://", "http://alice:s3cret@")
    with caplog.at_level(logging.DEBUG, logger="pvl8da"):
        download.download_biome_scene(SCENE, tmp_path, base + "/cca", policy=FAST, sidecar=False)
        download.download_file(f"{base}/cca/{SCENE}.tar.gz?token=t0ken", tmp_path / "copy.tar.gz", policy=FAST)
    assert "attempt 2 of 3" in caplog.text
    assert "s3cret" not in caplog.text and "alice" not in caplog.text and "t0ken" not in caplog.text
    assert all(auth and auth.startswith("Basic ") for _, _, auth in server.requests)


@pytest.mark.parametrize("char", ["#", "/", "?"])
def test_raw_delimiter_in_a_password_never_leaks(server, tmp_path, caplog, char):
    base = server.url.replace("http://", f"http://alice:Kx7{char}Qz9@")
    with caplog.at_level(logging.DEBUG, logger="pvl8da"):
        for call in (lambda: download.download_biome_scene(SCENE, tmp_path, f"{base}/cca", policy=FAST),
                     lambda: download.download_stac_scene(C2, tmp_path, f"{base}/stac", policy=FAST)):
            with pytest.raises(InputError, match="percent-encode") as err:
                call()
            text = f"{err.value}\n{caplog.text}"
            assert "Kx7" not in text and "Qz9" not in text and "alice" not in text, text
    assert server.requests == []
    assert _leftovers(tmp_path) == []


def test_redact_hides_a_password_with_raw_delimiters():
    assert download.redact("http://alice:Kx7#Qz9@host:8080/cca?t=1") == \
        "http://<redacted>@host:8080/cca?<redacted>"
    assert download.redact("http://alice:Kx7/Qz9@host:8080/cca?t=1") == \
        "http://<redacted>@host:8080/cca?<redacted>"
    assert download.redact("http://alice:12/Q@z9@host/cca") == "http://<redacted>@host/cca"
    assert download.redact("https://u:p@[::1]:8443/a") == "https://[::1]:8443/a"


def test_redact_and_checksums():
    assert download.redact("https://u:p@host:8080/a/b.tif?X-Amz-Signature=zz") == \
        "https://host:8080/a/b.tif?<redacted>"
    digest = hashlib.sha256(b"x").hexdigest()
    assert download.parse_checksum("1220" + digest) == ("sha256", digest)
    assert download.parse_checksum(f"sha256:{digest}") == ("sha256", digest)
    assert download.parse_checksum(hashlib.md5(b"x").hexdigest())[0] == "md5"
    with pytest.raises(InputError, match="unrecognised checksum"):
        download.parse_checksum("12zz")


# --- STAC -------------------------------------------------------------------------------------

C2 = "LC08_L1TP_139029_20140515_20200911_02_T1"
C2_SUFFIXES = [f"B{b}.TIF" for b in range(1, 12)] + ["QA_PIXEL.TIF", "MTL.txt"]
USGS_KEYS = ["coastal", "blue", "green", "red", "nir08", "swir16", "swir22", "pan", "cirrus",
             "lwir11", "lwir12", "qa_pixel", "mtl.txt"]


def _stac(server: FakeServer, drop: tuple[str, ...] = (), relative: bool = False) -> dict:
    """Publish a Collection 2 item whose assets are served by the fake server; return the item."""
    assets = {}
    for key, suffix in zip(USGS_KEYS, C2_SUFFIXES):
        body = f"{C2} {suffix}".encode() * 100
        path = f"/data/{C2}/{C2}_{suffix}"
        server.files[path] = body
        assets[key] = {"href": (f"../../../../data/{C2}/{C2}_{suffix}" if relative else server.url + path),
                       "file:size": len(body),
                       "file:checksum": "1220" + hashlib.sha256(body).hexdigest()}
    assets["thumbnail"] = {"href": server.url + "/data/thumb.jpeg"}
    for key in drop:
        del assets[key]
    item = {"type": "Feature", "stac_version": "1.0.0", "id": C2, "collection": "landsat-c2l1",
            "assets": assets}
    server.files[f"/stac/collections/landsat-c2l1/items/{C2}"] = json.dumps(item).encode()
    return item


@pytest.mark.parametrize("relative", [False, True])
def test_stac_download_writes_the_reader_layout(server, tmp_path, relative):
    _stac(server, relative=relative)
    out = download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{C2}_{s}" for s in C2_SUFFIXES)
    assert (out / f"{C2}_B10.TIF").read_bytes() == server.files[f"/data/{C2}/{C2}_B10.TIF"]
    assert _leftovers(tmp_path) == [C2]
    assert all("thumb" not in p for p, _, _ in server.requests)


def test_stac_item_cut_short_is_fetched_again(server, tmp_path):
    _stac(server)
    item = f"/stac/collections/landsat-c2l1/items/{C2}"
    server.cut_once.add(item)
    download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)
    assert [p for p, _, _ in server.requests].count(item) == 2


def test_stac_checksum_mismatch_discards_the_scene(server, tmp_path):
    _stac(server)
    server.files[f"/data/{C2}/{C2}_B5.TIF"] = server.files[f"/data/{C2}/{C2}_B6.TIF"]
    with pytest.raises(InputError, match="checksum mismatch|bytes, the expected size"):
        download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)
    assert _leftovers(tmp_path) == []


def test_stac_item_without_needed_assets(server, tmp_path):
    _stac(server, drop=("qa_pixel", "lwir12"))
    with pytest.raises(InputError, match=r"lacks the assets B11.TIF .*QA_PIXEL.TIF"):
        download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)
    assert _leftovers(tmp_path) == []
    assert not any(p.startswith("/data/") for p, _, _ in server.requests)


def test_unknown_stac_item(server, tmp_path):
    with pytest.raises(NotFoundError, match=f"scene {C2} not found in STAC collection landsat-c2l1"):
        download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)


def test_stac_write_error_removes_partial_files(server, tmp_path, monkeypatch):
    _stac(server)
    real_open = open
    calls = {"n": 0}

    class FullDisk:
        def __init__(self, stream):
            self.stream = stream

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    def fake_open(path, mode="r", *args, **kwargs):
        stream = real_open(path, mode, *args, **kwargs)
        if "b" in mode and ("w" in mode or "a" in mode):
            calls["n"] += 1
            if calls["n"] == 4:
                return FullDisk(stream)
        return stream

    monkeypatch.setattr(download, "open", fake_open, raising=False)
    with pytest.raises(OSError, match="cannot write .*No space left on device.*partial download removed") as err:
        download.download_stac_scene(C2, tmp_path, f"{server.url}/stac", policy=FAST)
    assert err.value.errno == errno.ENOSPC
    assert _leftovers(tmp_path) == []


@pytest.fixture
def tiny_fs(tmp_path):
    """Mount a tmpfs of a given size (needs root and mount rights; skipped otherwise); unmounted at teardown."""
    mounted = []

    def mount(size: int) -> Path:
        point = tmp_path / f"tiny{len(mounted)}"
        point.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                  capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs: {exc}")
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in mounted:
            subprocess.run(["umount", str(point)], capture_output=True, timeout=10)


@pytest.mark.parametrize("stage", ["download", "extraction"])
def test_full_disk_leaves_nothing(server, scene_dir, tiny_fs, stage):
    noise = np.random.default_rng(0).integers(0, 256, 256 << 10, dtype=np.uint8).tobytes()
    archive = _tar_gz(scene_dir, extra={f"BC/{SCENE}/noise.bin": noise})
    server.files[f"/cca/{SCENE}.tar.gz"] = archive
    size = len(archive) // 2 if stage == "download" else len(archive) + (32 << 10)
    root = tiny_fs(size)
    with pytest.raises(OSError, match="cannot write") as err:
        download.download_biome_scene(SCENE, root, f"{server.url}/cca", policy=FAST, sidecar=False)
    assert err.value.errno == errno.ENOSPC
    assert ("/extracted/" in err.value.filename) == (stage == "extraction")
    assert _leftovers(root) == []


def test_scene_folder_permissions_follow_the_umask(server, scene_dir, tmp_path):
    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    old = os.umask(0o022)
    try:
        out = download.download_biome_scene(SCENE, tmp_path, f"{server.url}/cca", policy=FAST, sidecar=False)
    finally:
        os.umask(old)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()} == {oct(0o644)}
    assert oct(stat.S_IMODE(out.stat().st_mode)) == oct(0o755)


def test_download_task_passes_its_size_limit(server, scene_dir, tmp_path):
    from tasks.download import DownloadLandsat8

    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    task = DownloadLandsat8(scene_id=SCENE, dest=str(tmp_path), base_url=f"{server.url}/cca", max_archive_gb=1e-6)
    assert task.task_id == DownloadLandsat8(scene_id=SCENE, dest=str(tmp_path)).task_id
    with pytest.raises(InputError, match=f"limit of {int(1e-6 * 2**30)} bytes"):
        task.run()
    assert _leftovers(tmp_path) == []


def test_download_task_builds_the_scene_folder(server, scene_dir, tmp_path):
    import luigi

    from tasks.download import DownloadLandsat8

    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    base = server.url.replace("http://", "http://alice:s3cret@") + "/cca"
    task = DownloadLandsat8(scene_id=SCENE, dest=str(tmp_path / "l8"), base_url=base)
    assert "s3cret" not in repr(task) and "s3cret" not in task.task_id
    assert not task.complete()
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status.name == "SUCCESS", result.summary_text
    assert task.complete()
    _assert_same_scene(tmp_path / "l8" / SCENE, scene_dir)

    missing = DownloadLandsat8(scene_id="LC80000002014001LGN00", dest=str(tmp_path / "l8"), base_url=base)
    # A 404 shows only while running, so configs/luigi.cfg's retries (keep_alive, 120 s apart) would apply:
    # this one worker stops at the first failure instead.
    config = luigi.configuration.get_config()
    keep_alive = config.get("worker", "keep_alive", None)
    config.set("worker", "keep_alive", "false")
    try:
        result = luigi.build([missing], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    finally:
        if keep_alive is None:
            config.remove_option("worker", "keep_alive")
        else:
            config.set("worker", "keep_alive", keep_alive)
    assert result.status.name == "FAILED"
    assert _leftovers(tmp_path / "l8") == [SCENE]


def test_convert_pv_downloads_a_missing_scene(server, scene_dir, tmp_path):
    import h5py
    import luigi

    from tasks.convert import ConvertPV

    server.files[f"/cca/{SCENE}.tar.gz"] = _tar_gz(scene_dir)
    config = luigi.configuration.get_config()
    config.set("DownloadLandsat8", "base_url", server.url + "/cca")
    try:
        task = ConvertPV(l8img=str(tmp_path / "l8" / SCENE), outfolder=str(tmp_path / "pv"), type_product="biome",
                         download="biome")
        assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    finally:
        config.remove_option("DownloadLandsat8", "base_url")
    _assert_same_scene(tmp_path / "l8" / SCENE, scene_dir)
    with h5py.File(task.output()["product"].path, "r") as product:
        assert product.attrs["image"] == SCENE and "CM_RESAMPLED" in product
