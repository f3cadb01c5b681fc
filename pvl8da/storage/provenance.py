"""What an output was made from: the task, its parameters and the checksums of its input and weight files.

An output records its provenance (an HDF5 root attribute, or a JSON file); a run that finds the output
compares it with what it would make now, so that an output is never reused for other parameters or inputs.
Files compare by SHA-256; the size and modification time recorded beside it spare re-reading a file that
has not changed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import h5py

from pvl8da.storage.download import file_digest

ATTRIBUTE = "pvl8da_provenance"
#: A file given by its known digest instead of a path (e.g. published weights not downloaded yet).
DIGEST_PREFIX = "sha256:"


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Path, size, modification time and SHA-256 of a file."""
    path = Path(path)
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256": file_digest(path, "sha256")}


def _file_record(file: str | os.PathLike) -> dict[str, Any]:
    if isinstance(file, str) and file.startswith(DIGEST_PREFIX):
        return {"sha256": file[len(DIGEST_PREFIX):]}
    return fingerprint(file)


def make_record(task: str, parameters: Mapping[str, Any], files: Mapping[str, str | os.PathLike]) -> dict:
    """The provenance of an output: task name, parameters (as strings) and the fingerprint of each file
    (a path, or ``sha256:<hex>`` for a file known by its digest)."""
    return {"task": task, "parameters": {k: str(v) for k, v in parameters.items()},
            "files": {name: _file_record(file) for name, file in files.items()}}


def _same_file(recorded: Mapping[str, Any], current: str | os.PathLike) -> bool:
    if isinstance(current, str) and current.startswith(DIGEST_PREFIX):
        return recorded.get("sha256") == current[len(DIGEST_PREFIX):]
    path = Path(current)
    if not path.is_file():  # an input removed since: nothing to compare, the output stands
        return True
    stat = path.stat()
    if (str(path.resolve()), stat.st_size, stat.st_mtime_ns) == (recorded.get("path"), recorded.get("size"),
                                                                 recorded.get("mtime_ns")):
        return True
    return stat.st_size == recorded.get("size") and file_digest(path, "sha256") == recorded.get("sha256")


def differences(recorded: Mapping[str, Any] | None, task: str, parameters: Mapping[str, Any],
                files: Mapping[str, str | os.PathLike], defaults: Mapping[str, Any] | None = None) -> list[str]:
    """What differs between a recorded provenance and the current task: one line per parameter or file. A
    parameter the record lacks (made before the option existed) counts as made with its value in ``defaults``."""
    defaults = defaults or {}
    if not recorded:
        return ["no provenance recorded (made by another version or by hand)"]
    found = []
    if recorded.get("task") != task:
        found.append(f"made by {recorded.get('task')}, not {task}")
    old = recorded.get("parameters", {})
    for name, value in parameters.items():
        made = old.get(name, str(defaults[name]) if name in defaults else None)
        if made != str(value):
            shown = made if name in old else "nothing recorded" if made is None else f"{made} (the default then)"
            found.append(f"--{name.replace('_', '-')}: made with {shown}, now {value}")
    old_files = recorded.get("files", {})
    for name, current in files.items():
        if name not in old_files or not _same_file(old_files[name], current):
            found.append(f"{name}: the file {current} differs from the one it was made from "
                         f"(sha256 {old_files.get(name, {}).get('sha256', 'not recorded')})")
    return found


def write_hdf5(f: h5py.File, record: Mapping[str, Any]) -> None:
    """Store a provenance record as a root attribute of an open HDF5 file."""
    f.attrs[ATTRIBUTE] = json.dumps(record, sort_keys=True)


def read_hdf5(path: str | os.PathLike) -> dict | None:
    """The provenance record of an HDF5 file, or None (no attribute, or not readable)."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(ATTRIBUTE)
    except OSError:
        return None
    if value is None:
        return None
    return json.loads(value.decode() if isinstance(value, bytes) else value)
