"""Landsat-8 scene acquisition: resumable, verified HTTP downloads and safe archive extraction.

Two sources produce the same scene folder ``<dest_root>/<scene ID>/`` (bands ``<ID>_B1.TIF`` …
``<ID>_B11.TIF``, the quality band and ``<ID>_MTL.txt``), which appears in one rename only when
complete:

- :func:`download_biome_scene`: one ``.tar.gz`` per scene of the Landsat 8 Cloud Cover Assessment
  validation data (the "Biome" set), at a configurable base URL;
- :func:`download_stac_scene`: the assets of a Landsat Collection 2 Level-1 item of a STAC API.

Credentials may be given as ``user:password@`` in a URL (``/``, ``?``, ``#`` and ``@`` in them
percent-encoded) or in ``~/.netrc``; they are sent as an HTTP Basic header that is not forwarded on
redirects, and URLs are logged without them.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import netrc
import os
import re
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator, Mapping, Sequence, TypeVar

from tqdm import tqdm

from pvl8da.storage.atomic import atomic_dir, atomic_path
from pvl8da.errors import InputError, PVL8DAError

log = logging.getLogger(__name__)

#: The Landsat 8 Cloud Cover Assessment validation data: ``<base>/<scene ID>.tar.gz``.
BIOME_BASE_URL = "https://landsat.usgs.gov/cloud-validation/cca_l8"
#: The USGS LandsatLook STAC API (Collection 2).
STAC_URL = "https://landsatlook.usgs.gov/stac-server"
STAC_COLLECTION = "landsat-c2l1"
#: All OLI/TIRS bands; B8 is the 15 m panchromatic band.
BANDS: tuple[int, ...] = tuple(range(1, 12))

CHUNK_BYTES = 1 << 20
MAX_JSON_BYTES = 16 << 20
#: Default limit on the uncompressed size of an extracted archive (a Biome scene unpacks to 1-2 GB).
MAX_ARCHIVE_BYTES = 4 << 30
_RETRY_STATUS = frozenset({408, 425, 429})
_SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
# ``scheme://`` and the authority as urllib reads it: up to the first '/', '?' or '#'.
_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Multihash prefixes (function code, digest length) of the STAC ``file:checksum`` field.
_MULTIHASH = {"1220": "sha256", "1340": "sha512", "1114": "sha1", "d50110": "md5"}
_DIGEST_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
# Asset keys of the USGS landsat-c2l1 items, used when an href's file name does not tell.
_STAC_KEYS = {
    "B1.TIF": "coastal", "B2.TIF": "blue", "B3.TIF": "green", "B4.TIF": "red", "B5.TIF": "nir08",
    "B6.TIF": "swir16", "B7.TIF": "swir22", "B8.TIF": "pan", "B9.TIF": "cirrus",
    "B10.TIF": "lwir11", "B11.TIF": "lwir12", "QA_PIXEL.TIF": "qa_pixel", "MTL.txt": "mtl.txt",
}

T = TypeVar("T")


class DownloadError(PVL8DAError):
    """A download kept failing (connection errors, server errors) after all its attempts."""


class NotFoundError(InputError):
    """The server answered 404 or 410: the file, item or scene does not exist there."""


class _Transient(Exception):
    """A failure worth another attempt: connection lost, timeout, 5xx, 429."""


class _RangeNotSatisfiable(_Transient):
    """HTTP 416 on a resumed request; the message holds the Content-Range header."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` in all, waiting ``backoff_s · 2^k`` (capped)."""

    attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt)


DEFAULT_POLICY = RetryPolicy()


def _misparsed_userinfo(url: str) -> bool:
    """Whether an '@' follows the authority, as after a ``user:password@`` holding a raw '/', '?' or '#'.

    urllib would end the host at that character and take part of the password for the host, the
    port or the path; an '@' in the path of a URL without credentials cannot be told apart.
    """
    authority = _AUTHORITY.match(url)
    return bool(authority) and "@" in url[authority.end():]


def redact(url: str) -> str:
    """``url`` fit for a log: no user name or password, no query string (tokens, signatures).

    Where the user info cannot be parsed (see :func:`_misparsed_userinfo`) only what follows the
    last '@' is kept, after ``<redacted>@``.
    """
    if _misparsed_userinfo(url):
        scheme = url.partition("://")[0]
        return redact(f"{scheme}://{url.rpartition('@')[2]}").replace("://", "://<redacted>@", 1)
    parts = urllib.parse.urlsplit(url)
    query = "?<redacted>" if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")) + query


def check_scene_id(scene_id: str) -> str:
    """Return ``scene_id`` if it is a plain Landsat product or scene ID (letters, digits, ``_``)."""
    if not _SCENE_ID.match(scene_id or ""):
        raise InputError(f"{scene_id!r}: not a Landsat scene ID (letters, digits and '_' only)")
    return scene_id


# --- HTTP -------------------------------------------------------------------------------------

def _credentials(url: str) -> tuple[str, str | None]:
    """Split ``url`` into the URL without user info and a Basic auth header (URL or ~/.netrc), if any."""
    if _misparsed_userinfo(url):
        raise InputError(f"{redact(url)}: '@' after the host: percent-encode '/', '?', '#' and '@' in a "
                         "user name or password (%2F, %3F, %23, %40), and '@' in a path (%40)")
    parts = urllib.parse.urlsplit(url)
    user, password = parts.username, parts.password
    clean = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
    if user is None and parts.hostname:
        try:
            entry = netrc.netrc().authenticators(parts.hostname)
        except (FileNotFoundError, netrc.NetrcParseError, OSError):
            entry = None
        if entry:
            user, password = entry[0], entry[2]
    if user is None:
        return clean, None
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
    return clean, "Basic " + base64.b64encode(token.encode()).decode()


def _open(url: str, headers: Mapping[str, str], timeout: float) -> http.client.HTTPResponse:
    """One GET; 404/410 → :class:`NotFoundError`, other 4xx → :class:`InputError`, else transient."""
    clean, auth = _credentials(url)
    request = urllib.request.Request(clean, headers={"Accept-Encoding": "identity", **headers})
    if auth:
        request.add_unredirected_header("Authorization", auth)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (404, 410):
            raise NotFoundError(f"{redact(url)}: not found (HTTP {exc.code})") from None
        if exc.code == 416:
            raise _RangeNotSatisfiable(exc.headers.get("Content-Range", "")) from None
        if exc.code >= 500 or exc.code in _RETRY_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        hint = " (credentials needed: user:password@ in the URL or ~/.netrc)" if exc.code in (401, 403) else ""
        raise InputError(f"{redact(url)}: HTTP {exc.code} {exc.reason}{hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None


def _retrying(attempt: Callable[[], T], url: str, policy: RetryPolicy) -> T:
    """Call ``attempt`` until it succeeds, retrying transient failures with exponential back-off."""
    last: _Transient | None = None
    for number in range(policy.attempts):
        try:
            return attempt()
        except _Transient as exc:
            last = exc
            if number + 1 < policy.attempts:
                delay = policy.delay(number)
                log.warning("%s: %s; attempt %d of %d in %.1f s", redact(url), exc, number + 2,
                            policy.attempts, delay)
                time.sleep(delay)
    raise DownloadError(f"{redact(url)}: giving up after {policy.attempts} attempts: {last}")


def fetch_bytes(url: str, *, policy: RetryPolicy = DEFAULT_POLICY, limit: int = MAX_JSON_BYTES,
                accept: str = "*/*") -> bytes:
    """The body of a small document (at most ``limit`` bytes), with retries."""
    def attempt() -> bytes:
        with _open(url, {"Accept": accept}, policy.timeout_s) as response:
            length = response.headers.get("Content-Length")
            try:
                body = response.read(limit + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost: {exc}") from None
        if length and length.isdigit() and len(body) < int(length):
            raise _Transient(f"connection closed after {len(body)} of {length} bytes")
        if len(body) > limit:
            raise InputError(f"{redact(url)}: larger than {limit} bytes, not the expected document")
        return body
    return _retrying(attempt, url, policy)


def fetch_json(url: str, *, policy: RetryPolicy = DEFAULT_POLICY) -> dict:
    """A JSON object (e.g. a STAC item) fetched with retries."""
    body = fetch_bytes(url, policy=policy, accept="application/geo+json, application/json")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InputError(f"{redact(url)}: not a JSON document ({exc})") from None
    if not isinstance(document, dict):
        raise InputError(f"{redact(url)}: expected a JSON object")
    return document


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/total`` header; None where absent."""
    match = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


def _write_error(path: Path, exc: OSError) -> OSError:
    """A clear OSError for a failed write (same errno), saying the partial file is dropped."""
    error = OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc} (partial download removed)")
    error.filename = str(path)
    return error


def _download_attempt(url: str, part: Path, timeout: float, bar: tqdm) -> int | None:
    """Fetch ``url`` into ``part``, resuming from its current size; return the total size if known."""
    have = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, {"Range": f"bytes={have}-"} if have else {}, timeout)
    except _RangeNotSatisfiable as exc:
        _, total = _content_range(str(exc))
        if total == have:
            return total
        part.unlink()
        raise _Transient("server refused to resume; restarting from the beginning") from None
    with response:
        mode, total = "wb", None
        if have and response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Transient(f"server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        else:
            if have:
                log.info("%s: server ignored the Range request; restarting", redact(url))
                have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        bar.reset(total=total)
        bar.update(have)
        received = have
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(CHUNK_BYTES)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Transient(f"connection lost after {received} bytes: {exc}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except OSError as exc:
            raise _write_error(part, exc) from exc
    if total is not None and received < total:
        raise _Transient(f"connection closed after {received} of {total} bytes")
    return total


def parse_checksum(checksum: str) -> tuple[str, str]:
    """(hashlib algorithm, hex digest) of ``algo:hex``, a bare hex digest, or a multihash (STAC)."""
    text = checksum.strip()
    if ":" in text:
        algorithm, _, digest = text.partition(":")
        algorithm = algorithm.lower().replace("-", "")
        if algorithm in hashlib.algorithms_available and _HEX.match(digest):
            return algorithm, digest.lower()
    elif _HEX.match(text):
        for prefix, algorithm in _MULTIHASH.items():
            size = hashlib.new(algorithm).digest_size * 2
            if text.lower().startswith(prefix) and len(text) == len(prefix) + size:
                return algorithm, text[len(prefix):].lower()
        if len(text) in _DIGEST_LENGTHS:
            return _DIGEST_LENGTHS[len(text)], text.lower()
    raise InputError(f"{checksum!r}: unrecognised checksum (want algo:hex, a hex digest or a multihash)")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url: str, dest: str | os.PathLike, *, size: int | None = None,
                  checksum: str | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                  progress: bool | None = None) -> Path:
    """Download ``url`` to ``dest`` (its folder must exist) atomically, resuming and retrying.

    The body streams into a temporary file beside ``dest`` (resumed with an HTTP Range request
    after a lost connection); it replaces ``dest`` only once its size matches ``size`` and the
    server's Content-Length and its digest matches ``checksum`` (see :func:`parse_checksum`).
    On any failure the temporary file is removed. ``progress=None`` shows a bar on a terminal only.
    """
    dest = Path(dest)
    expected = parse_checksum(checksum) if checksum else None
    log.info("downloading %s -> %s", redact(url), dest)
    with atomic_path(dest) as part, tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024,
                                         disable=None if progress is None else not progress,
                                         leave=False) as bar:
        total = _retrying(lambda: _download_attempt(url, part, policy.timeout_s, bar), url, policy)
        actual = part.stat().st_size
        for what, want in (("server's Content-Length", total), ("expected size", size)):
            if want is not None and actual != int(want):
                raise InputError(f"{redact(url)}: got {actual} bytes, the {what} is {want}; download discarded")
        if expected:
            got = file_digest(part, expected[0])
            if got != expected[1]:
                raise InputError(f"{redact(url)}: {expected[0]} checksum mismatch (expected {expected[1]}, "
                                 f"got {got}); download discarded")
    log.info("downloaded %s (%d bytes)", dest, actual)
    return dest


# --- archives ---------------------------------------------------------------------------------

def _member_target(name: str, dest: Path, archive: Path) -> Path | None:
    """Where member ``name`` goes under ``dest``; None for the archive root; unsafe names rejected."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise InputError(f"{archive}: refusing member {name!r}: absolute path")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{archive}: refusing member {name!r}: '..' leads outside the folder")
    return dest.joinpath(*parts) if parts else None


@dataclass
class _SizeLimit:
    """The uncompressed bytes that one extraction of ``archive`` may write, and those written so far."""

    archive: Path
    limit: int
    used: int = 0

    def check(self, name: str, size: int) -> None:
        """Refuse member ``name`` if ``size`` more bytes would pass the limit."""
        if self.used + size > self.limit:
            raise InputError(f"{self.archive}: refusing member {name!r}: the archive unpacks to more than the "
                             f"limit of {self.limit} bytes ({self.limit / 2**30:.3g} GiB; max_archive_bytes, "
                             "DownloadLandsat8 --max-archive-gb)")

    def take(self, name: str, size: int) -> None:
        """Count ``size`` bytes written of member ``name``, refusing them past the limit."""
        self.check(name, size)
        self.used += size


def _corrupt(archive: Path, where: str, exc: BaseException) -> InputError:
    """The error for a read failure at ``where`` (which member) in ``archive``."""
    return InputError(f"{archive}: corrupt or truncated archive: {where} ({exc})")


def _copy_member(source: IO[bytes], target: Path, name: str, size: int, limit: _SizeLimit,
                 errors: tuple[type, ...]) -> None:
    """Copy member ``name`` (``size`` bytes by its header) within ``limit``, counting what is really read.

    Read errors mean a corrupt archive (:class:`InputError`); write errors stay OSErrors.
    """
    limit.check(name, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "wb") as out:
            while True:
                try:
                    chunk = source.read(CHUNK_BYTES)
                except errors as exc:
                    raise _corrupt(limit.archive, f"cannot read member {name!r}", exc) from None
                if not chunk:
                    break
                limit.take(name, len(chunk))
                out.write(chunk)
    except OSError as exc:
        raise _write_error(target, exc) from exc


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, OSError)


def _iter_tar(tar: tarfile.TarFile, archive: Path) -> Iterator[tarfile.TarInfo]:
    """Members of ``tar``; a read failure becomes a 'corrupt archive' error naming the member it is at."""
    name = None
    while True:
        try:
            member = tar.next()
        except _TAR_ERRORS as exc:
            where = f"cannot read the member after {name!r}" if name else "cannot read the first member"
            raise _corrupt(archive, where, exc) from None
        if member is None:
            return
        name = member.name
        yield member


def _extract_tar(archive: Path, dest: Path, limit: _SizeLimit) -> None:
    try:
        tar = tarfile.open(archive, "r:*")
    except _TAR_ERRORS as exc:
        raise InputError(f"{archive}: not a readable tar or zip archive ({exc})") from None
    with tar:
        for member in _iter_tar(tar, archive):
            target = _member_target(member.name, dest, archive)
            if member.isdir():
                if target:
                    target.mkdir(parents=True, exist_ok=True)
            elif member.isreg() and target:
                _copy_member(tar.extractfile(member), target, member.name, member.size, limit, _TAR_ERRORS)
            else:
                kind = ("symbolic link" if member.issym() else "hard link" if member.islnk()
                        else "device or FIFO" if (member.isdev()) else "special member")
                raise InputError(f"{archive}: refusing member {member.name!r}: {kind}")
        _read_to_end(tar, archive)


def _read_to_end(tar: tarfile.TarFile, archive: Path) -> None:
    """Decompress what follows the end-of-archive marker, so that gzip/bzip2/xz check their trailers.

    tarfile stops at the marker; a damaged checksum or stream after it would otherwise pass unseen.
    """
    try:
        while tar.fileobj.read(CHUNK_BYTES):
            pass
    except _TAR_ERRORS as exc:
        raise _corrupt(archive, "after the last member", exc) from None


def _extract_zip(archive: Path, dest: Path, limit: _SizeLimit) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except _ZIP_ERRORS as exc:
        raise InputError(f"{archive}: corrupt zip archive ({exc})") from None
    with zf:
        for info in zf.infolist():
            target = _member_target(info.filename, dest, archive)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if info.is_dir():
                if target:
                    target.mkdir(parents=True, exist_ok=True)
            elif kind and kind != stat.S_IFREG:
                raise InputError(f"{archive}: refusing member {info.filename!r}: not a regular file")
            elif target:
                try:
                    source = zf.open(info)
                except _ZIP_ERRORS as exc:
                    raise _corrupt(archive, f"cannot read member {info.filename!r}", exc) from None
                with source:
                    _copy_member(source, target, info.filename, info.file_size, limit, _ZIP_ERRORS)


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *,
                 max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
    """Extract a tar (any compression) or zip ``archive`` into the existing folder ``dest``.

    Only regular files and folders are written, with default permissions, ``max_bytes`` in all:
    each member's header size is checked before it is written and the bytes are counted as they
    are. Absolute names, ``..``, symbolic and hard links, devices and FIFOs are refused with
    :class:`InputError`, as are a corrupt archive (naming the member) and one past the limit; what
    was written so far stays in ``dest``, so extract into a temporary folder.
    """
    archive, dest = Path(archive), Path(dest)
    limit = _SizeLimit(archive, max_bytes)
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, dest, limit)
    else:
        _extract_tar(archive, dest, limit)


# --- scenes -----------------------------------------------------------------------------------

def scene_files(scene_id: str, bands: Sequence[int] = BANDS, quality: str = "QA_PIXEL") -> list[str]:
    """File names of a scene folder: the bands, the quality band (``BQA`` or ``QA_PIXEL``) and the MTL."""
    return [f"{scene_id}_B{b}.TIF" for b in bands] + [f"{scene_id}_{quality}.TIF", f"{scene_id}_MTL.txt"]


def _check_scene_folder(folder: Path, scene_id: str, bands: Sequence[int], origin: str) -> None:
    names = {p.name for p in folder.iterdir()}
    quality = "BQA" if f"{scene_id}_BQA.TIF" in names else "QA_PIXEL"
    missing = [n for n in scene_files(scene_id, bands, quality) if n not in names]
    if missing:
        raise InputError(f"{origin}: scene {scene_id} is incomplete, missing {', '.join(missing)}")


def _sidecar_checksum(url: str, policy: RetryPolicy) -> str | None:
    """A checksum published beside ``url`` as ``<url>.sha256`` or ``<url>.md5``, if any."""
    quick = RetryPolicy(attempts=2, backoff_s=policy.backoff_s, timeout_s=policy.timeout_s)
    for algorithm in ("sha256", "md5"):
        try:
            text = fetch_bytes(f"{url}.{algorithm}", policy=quick, limit=4096).decode("ascii", "replace")
        except (InputError, DownloadError):
            continue
        token = text.split()[0] if text.split() else ""
        if _HEX.match(token) and len(token) == hashlib.new(algorithm).digest_size * 2:
            return f"{algorithm}:{token}"
        log.warning("%s.%s: not a %s checksum file; ignored", redact(url), algorithm, algorithm)
    return None


def download_biome_scene(scene_id: str, dest_root: str | os.PathLike, base_url: str = BIOME_BASE_URL, *,
                         policy: RetryPolicy = DEFAULT_POLICY, sidecar: bool = True,
                         progress: bool | None = None, max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> Path:
    """Download and extract ``<base_url>/<scene_id>.tar.gz`` into ``<dest_root>/<scene_id>/``.

    The archive is verified against a ``.sha256``/``.md5`` sidecar where the server has one
    (``sidecar``), extracted safely (at most ``max_archive_bytes`` uncompressed, see
    :func:`safe_extract`) into a temporary folder, and the folder holding
    ``<scene_id>_MTL.txt`` is renamed into place only when all bands, the quality band and the
    MTL are there. Returns the scene folder.
    """
    check_scene_id(scene_id)
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{scene_id}.tar.gz"
    checksum = _sidecar_checksum(url, policy) if sidecar else None
    with tempfile.TemporaryDirectory(prefix=f".{scene_id}.", suffix=".download", dir=dest_root) as work, \
            atomic_dir(dest_root / scene_id) as staging:
        archive = Path(work) / f"{scene_id}.tar.gz"
        try:
            download_file(url, archive, checksum=checksum, policy=policy, progress=progress)
        except NotFoundError:
            raise NotFoundError(f"Biome scene {scene_id} not found: {redact(url)} answered 404 "
                                "(check the scene ID and the base URL)") from None
        extracted = Path(work) / "extracted"
        extracted.mkdir()
        safe_extract(archive, extracted, max_bytes=max_archive_bytes)
        archive.unlink()
        mtls = sorted(extracted.rglob(f"{scene_id}_MTL.txt"))
        if not mtls:
            raise InputError(f"{redact(url)}: the archive holds no {scene_id}_MTL.txt; not scene {scene_id}")
        _check_scene_folder(mtls[0].parent, scene_id, BANDS, redact(url))
        for item in mtls[0].parent.iterdir():
            os.replace(item, staging / item.name)
    log.info("scene %s ready in %s", scene_id, dest_root / scene_id)
    return dest_root / scene_id


def stac_item_url(stac_url: str, scene_id: str, collection: str = STAC_COLLECTION) -> str:
    """The URL of one item of a STAC API collection."""
    return f"{stac_url.rstrip('/')}/collections/{collection}/items/{urllib.parse.quote(scene_id)}"


def stac_assets(item: Mapping, scene_id: str, item_url: str, bands: Sequence[int] = BANDS) -> dict[str, dict]:
    """Map each file of the scene folder (``<ID>_B1.TIF`` …, QA_PIXEL, MTL) to its STAC asset.

    An asset is recognised by its href's file name (``…_B4.TIF``) or else by the USGS asset key
    (``red``); hrefs are made absolute against ``item_url``. A missing asset is an :class:`InputError`.
    """
    assets = item.get("assets") or {}
    found: dict[str, dict] = {}
    missing = []
    for name in scene_files(scene_id, bands):
        suffix = name[len(scene_id) + 1:]
        match = [a for a in assets.values() if isinstance(a, dict) and
                 PurePosixPath(urllib.parse.urlsplit(str(a.get("href", ""))).path).name.upper()
                 .endswith("_" + suffix.upper())]
        asset = match[0] if match else assets.get(_STAC_KEYS.get(suffix, ""))
        if not isinstance(asset, dict) or not asset.get("href"):
            missing.append(f"{suffix} (asset '{_STAC_KEYS.get(suffix, suffix)}')")
            continue
        href = urllib.parse.urljoin(item_url, str(asset["href"]))
        if urllib.parse.urlsplit(href).scheme not in ("http", "https"):
            missing.append(f"{suffix} (href {redact(href)} is not HTTP)")
            continue
        found[name] = {**asset, "href": href}
    if missing:
        raise InputError(f"{redact(item_url)}: STAC item {scene_id} lacks the assets {', '.join(missing)}")
    return found


def download_stac_scene(scene_id: str, dest_root: str | os.PathLike, stac_url: str = STAC_URL, *,
                        collection: str = STAC_COLLECTION, bands: Sequence[int] = BANDS,
                        policy: RetryPolicy = DEFAULT_POLICY, progress: bool | None = None) -> Path:
    """Download the bands, QA_PIXEL and MTL of a Collection 2 Level-1 STAC item into ``<dest_root>/<scene_id>/``.

    Each asset is checked against its ``file:size`` and ``file:checksum`` where the item gives them.
    The folder appears (one rename) only when every file is there. Returns the scene folder.
    """
    check_scene_id(scene_id)
    dest_root = Path(dest_root)
    item_url = stac_item_url(stac_url, scene_id, collection)
    try:
        item = fetch_json(item_url, policy=policy)
    except NotFoundError:
        raise NotFoundError(f"scene {scene_id} not found in STAC collection {collection} at "
                            f"{redact(stac_url)} (HTTP 404)") from None
    if item.get("id") not in (None, scene_id):
        raise InputError(f"{redact(item_url)}: item id {item.get('id')!r} is not {scene_id}")
    assets = stac_assets(item, scene_id, item_url, bands)
    with atomic_dir(dest_root / scene_id) as staging:
        for name, asset in assets.items():
            size = asset.get("file:size")
            download_file(asset["href"], staging / name, size=int(size) if size is not None else None,
                          checksum=asset.get("file:checksum"), policy=policy, progress=progress)
    log.info("scene %s ready in %s", scene_id, dest_root / scene_id)
    return dest_root / scene_id


def download_scene(scene_id: str, dest_root: str | os.PathLike, source: str = "biome", *,
                   base_url: str = BIOME_BASE_URL, stac_url: str = STAC_URL,
                   max_archive_bytes: int = MAX_ARCHIVE_BYTES, **options) -> Path:
    """Download a scene from ``source`` ``"biome"`` or ``"stac"``; see the two functions.

    ``max_archive_bytes`` limits the unpacked size of a Biome archive (STAC assets are plain files).
    """
    if source == "biome":
        return download_biome_scene(scene_id, dest_root, base_url, max_archive_bytes=max_archive_bytes, **options)
    if source == "stac":
        return download_stac_scene(scene_id, dest_root, stac_url, **options)
    raise InputError(f"{source!r}: unknown download source (biome or stac)")
