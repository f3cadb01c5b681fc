"""The paper's published weights, fetched on first use into the user's cache and verified by SHA-256.

Wherever a weights path is expected, the string ``published`` stands for the paper's file of that
kind (:data:`MANIFEST`). It is downloaded once from ``<base URL>/<file name>`` into
``${XDG_CACHE_HOME:-~/.cache}/pvl8da/weights/<file name>``; the base URL is an argument, else the
environment variable ``PVL8DA_WEIGHTS_URL``, else the ``checkpoints/`` folder of the original
repository at a fixed commit. Every use re-checks the cached file's SHA-256: a corrupt file is
removed and fetched again. A file placed there by hand with the right checksum is used as is.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pvl8da.storage.download import DEFAULT_POLICY, RetryPolicy, download_file, file_digest, redact
from pvl8da.errors import PVL8DAError

log = logging.getLogger(__name__)

PUBLISHED = "published"
BASE_URL_ENV = "PVL8DA_WEIGHTS_URL"
#: The ``checkpoints/`` folder of IPL-UV/pvl8dagans at the commit the paper's weights come from.
DEFAULT_BASE_URL = ("https://raw.githubusercontent.com/IPL-UV/pvl8dagans/"
                    "9d7f20c3aa1fe998b128c15525a0ecc0bbbf73c9/checkpoints")


@dataclass(frozen=True)
class PublishedFile:
    """One published weights file: its name under the base URL and its SHA-256."""

    name: str
    sha256: str


#: The published file of each kind of weights.
MANIFEST: dict[str, PublishedFile] = {
    "cloud_detection": PublishedFile("cloud_detection_l8.hdf5",
                                     "6856a05b99d37a7566bea9b302dfa50f79148c9f5da26326c6d1d5c273f58d2b"),
    "dagans": PublishedFile("full.hdf5", "fe9402939d996511d79b38b7fa52fb2e685b3e2b55347238072b5b65c7707ddc"),
}


class PublishedWeightsError(PVL8DAError):
    """The published weights could not be fetched or did not match their checksum."""


def is_published(value: str | os.PathLike | None) -> bool:
    """Whether ``value`` is the string ``published`` (a ``Path`` is always a path)."""
    return isinstance(value, str) and value == PUBLISHED


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pvl8da/weights``; ``~/.cache`` when the variable is unset, empty or relative."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "pvl8da" / "weights"


def resolved_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$PVL8DA_WEIGHTS_URL``, else :data:`DEFAULT_BASE_URL`, without a trailing slash."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def _verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` exists with the expected SHA-256; a file that does not match is removed."""
    if not path.is_file():
        return False
    if file_digest(path, "sha256") == sha256:
        return True
    log.warning("%s: SHA-256 mismatch, removed; fetching it again", path)
    path.unlink()
    return False


def fetch_published(kind: str, *, base_url: str | None = None, policy: RetryPolicy = DEFAULT_POLICY) -> Path:
    """The cached, verified published weights of ``kind`` (a key of :data:`MANIFEST`), downloaded if needed."""
    item = MANIFEST[kind]
    dest = cache_dir() / item.name
    if _verified(dest, item.sha256):
        return dest
    source = f"{resolved_base_url(base_url)}/{item.name}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        download_file(source, dest, checksum=f"sha256:{item.sha256}", policy=policy)
    except (PVL8DAError, OSError) as exc:
        reason = str(exc) if redact(source) in str(exc) else f"{redact(source)}: {exc}"
        raise PublishedWeightsError(
            f"cannot fetch the published {kind} weights: {reason}. Download {item.name} by hand "
            f"(e.g. from {DEFAULT_BASE_URL}/{item.name}) and place it at {dest} (SHA-256 {item.sha256}), "
            f"or point the base URL ({BASE_URL_ENV}) at a mirror") from exc
    return dest


def resolve_weights(value: str | os.PathLike, kind: str, *, base_url: str | None = None,
                    policy: RetryPolicy = DEFAULT_POLICY) -> Path:
    """The weights file ``value`` names: the published file of ``kind`` for ``published``, else ``value`` itself."""
    if is_published(value):
        return fetch_published(kind, base_url=base_url, policy=policy)
    return Path(value)
