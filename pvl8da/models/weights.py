"""The SHA-256 a weights file must have: from a ``SHA256SUMS`` file beside it, else the published file of its name.

One manifest, two sources, each declared once: ``SHA256SUMS`` (``sha256sum`` format) in a weights folder lists
the files of that folder (``checkpoints/SHA256SUMS``: the committed checkpoints), and
:data:`pvl8da.storage.published.MANIFEST` holds the sums of the paper's files (``cloud_detection_l8.hdf5``,
``full.hdf5``) wherever they lie. Whoever writes a weights file into a folder with a ``SHA256SUMS`` records its
new sum there with :func:`record_sums`; a file no manifest lists is not checksummed.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterable

from pvl8da.storage.atomic import atomic_path
from pvl8da.storage.download import file_digest
from pvl8da.errors import InputError
from pvl8da.storage.published import MANIFEST

log = logging.getLogger(__name__)

SUMS_FILE = "SHA256SUMS"
_SUMS_LINE = re.compile(r"(?P<sha256>[0-9a-f]{64}) [ *](?P<name>[^/\\]+)")


def read_sums(sums: Path) -> dict[str, str]:
    """File name → SHA-256 of a ``sha256sum``-format file (blank lines skipped)."""
    listed = {}
    for lineno, line in enumerate(sums.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUMS_LINE.fullmatch(line.strip())
        if match is None:
            raise InputError(f"{sums}: line {lineno} is not '<SHA-256>  <file name>': {line!r}")
        listed[match["name"]] = match["sha256"]
    return listed


def expected_sha256(path: str | os.PathLike) -> tuple[str, str] | None:
    """(SHA-256, where it is declared) of a weights file, or None when no manifest lists it."""
    path = Path(path)
    sums = path.parent / SUMS_FILE
    if sums.is_file():
        listed = read_sums(sums)
        if path.name in listed:
            return listed[path.name], str(sums)
    for item in MANIFEST.values():
        if item.name == path.name:
            return item.sha256, f"pvl8da/published.py for the published {item.name}"
    return None


def verify_sha256(path: str | os.PathLike) -> bool:
    """Whether a manifest lists ``path``; InputError naming the file, the expected and the actual sum on a mismatch."""
    path = Path(path)
    expected = expected_sha256(path)
    if expected is None:
        return False
    sha256, where = expected
    actual = file_digest(path, "sha256")
    if actual != sha256:
        if where.endswith(SUMS_FILE):
            fix = (f"if it was replaced on purpose, record its new sum in {where} "
                   "(pvl8da.models.weights.record_sums)")
        else:
            fix = "delete it and use 'published' to fetch it again, or give another model another file name"
        raise InputError(f"{path}: corrupt or replaced weights file: SHA-256 {actual}, expected {sha256} "
                         f"({where}); {fix}")
    log.debug("%s: SHA-256 matches %s", path, where)
    return True


def install_weights(copies: dict[str | os.PathLike, str | os.PathLike]) -> None:
    """Copy weights files (destination → source) atomically and record their new sums beside them."""
    for dest, src in copies.items():
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    record_sums(copies)


def record_sums(paths: Iterable[str | os.PathLike]) -> None:
    """Record the current SHA-256 of each file in the ``SHA256SUMS`` of its folder (created if absent), atomically."""
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, files in by_folder.items():
        sums = folder / SUMS_FILE
        listed = read_sums(sums) if sums.is_file() else {}
        listed.update({path.name: file_digest(path, "sha256") for path in files})
        with atomic_path(sums) as tmp:
            tmp.write_text("".join(f"{sha256}  {name}\n" for name, sha256 in sorted(listed.items())))
        log.info("recorded the SHA-256 of %s in %s", ", ".join(path.name for path in files), sums)
