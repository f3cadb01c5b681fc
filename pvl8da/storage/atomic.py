"""Atomic writing: produce a file or folder under a temporary name, rename it into place on success."""
from __future__ import annotations

import csv
import errno
import glob
import json
import logging
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)


_HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _owner_tag() -> str:
    """``<host>-<pid>``: which process made a temporary file, so that a later run can tell a stale one."""
    return f"{_HOST}-{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the temporary files or folders ``<prefix><host>-<pid>.…<suffix>`` in ``folder`` left by a dead
    process of this host (killed by SIGKILL or SIGTERM); those of live processes or other hosts stay."""
    removed = []
    for path in folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        host, _, pid = path.name[len(prefix):].split(".", 1)[0].rpartition("-")
        if host != _HOST or not pid.isdigit() or _process_alive(int(pid)):
            continue
        log.info("removing %s, left by a process that no longer runs", path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _public_mode(path: Path, is_dir: bool) -> None:
    """Give a temporary file or folder (created 0600/0700) the mode a plain create would: 0666/0777 & ~umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if is_dir else 0o666) & ~umask)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); it replaces ``path`` only if the block succeeds.

    On any exception the temporary file is removed and an existing ``path`` is left untouched. Temporary
    files of the same output left by a dead process are removed first.
    """
    with atomic_outputs(path) as (tmp,):
        yield tmp


@contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[tuple[Path, ...]]:
    """Temporary paths for several outputs of one job, committed together once the block succeeds.

    Every destination is checked first (its folder exists, it is not a folder); the temporary files are
    renamed in reverse order, so the first path, the one a Luigi target checks, appears last.
    """
    finals = [Path(p) for p in paths]
    for path in finals:
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path}: destination folder {path.parent} does not exist")
        if path.is_dir():
            raise IsADirectoryError(f"{path}: the destination is an existing folder, not a file name")
        remove_stale(path.parent, f".{path.stem}.", f".partial{path.suffix}")
    temps = []
    try:
        for path in finals:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{_owner_tag()}.", suffix=f".partial{path.suffix}",
                                       dir=path.parent)
            os.close(fd)
            os.unlink(tmp)
            temps.append(Path(tmp))
        yield tuple(temps)
        for tmp, path in zip(temps, finals):
            if not tmp.exists():
                raise RuntimeError(f"{path}: nothing was written")
        for tmp, path in reversed(list(zip(temps, finals))):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it is renamed to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.name}.", ".partial")
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".partial", dir=path.parent))
    _public_mode(tmp_path, is_dir=True)
    try:
        yield tmp_path
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private temporary folder ``<tmp>/pvl8da-<host>-<pid>.*`` removed afterwards; those left by dead
    processes are removed when the next one is made."""
    root = Path(tempfile.gettempdir())
    remove_stale(root, "pvl8da-")
    with tempfile.TemporaryDirectory(prefix=f"pvl8da-{_owner_tag()}.", dir=root) as tmp:
        yield Path(tmp)


def require_free_space(folder: str | os.PathLike, nbytes: float, what: str) -> None:
    """Raise OSError(ENOSPC), before anything is written, when ``folder`` has less than ``nbytes`` free."""
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise OSError(errno.ENOSPC, f"{folder}: {free / 2**20:.0f} MiB free, {what} needs about "
                                    f"{nbytes / 2**20:.0f} MiB; free some space or choose another folder")


def save_weights_atomic(model, path: str | os.PathLike) -> Path:
    """``model.save_weights`` to a ``*.weights.h5`` path, written under a temporary name and renamed.

    Keras insists on the ``.weights.h5`` suffix, so the temporary file keeps the final name inside a
    temporary folder beside ``path``.
    """
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"{path}: Keras weight files must end with .weights.h5")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: destination folder {path.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        tmp_file = Path(tmp) / path.name
        model.save_weights(tmp_file)
        os.replace(tmp_file, path)
    return path


def save_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    return path


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_csv_atomic(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write ``rows`` as CSV (columns: every key, in order of first appearance) atomically; returns the path."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
