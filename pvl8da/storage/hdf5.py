"""Writing HDF5 files that survive a full disk.

When a write fails (ENOSPC, a file-size limit), HDF5 keeps dirty metadata and chunks that it tries to flush
again when the datasets and the file are closed or garbage-collected; that flush fails too, and HDF5 then
crashes the process (SIGSEGV) instead of raising. Detaching the failed file from the disk first (truncated,
its descriptor pointed at /dev/null) lets those flushes succeed, so the file closes cleanly and the error is
reported as an exception.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import h5py

log = logging.getLogger(__name__)


def release_space(f: h5py.File) -> None:
    """Detach an open HDF5 file from the disk (its contents are lost): truncate it, freeing its space, and point
    its descriptor at /dev/null, so that whatever HDF5 still flushes while closing succeeds without space."""
    try:
        fd = f.id.get_vfd_handle()
        os.ftruncate(fd, 0)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError) as exc:  # not the sec2 driver, or already closed
        log.debug("could not detach %s: %s", f.filename, exc)


def close_safely(f: h5py.File, failed: bool, drop: Callable[[], None] = lambda: None) -> None:
    """Flush and close ``f``; when the job failed, or the flush fails, detach it from the disk first (see the
    module doc). ``drop`` releases the caller's own handles to objects of ``f`` (open datasets) before closing."""
    if not f.id.valid:
        drop()
        return
    error = None
    if not failed:
        try:
            f.flush()
        except OSError as exc:
            error = exc
    if failed or error is not None:
        release_space(f)
    drop()
    f.close()
    if error is not None:
        raise error


@contextmanager
def hdf5_writer(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[h5py.File]:
    """``h5py.File(path, mode)`` for writing, closed with :func:`close_safely` (a failed file is emptied)."""
    f = h5py.File(Path(path), mode, **kwargs)
    failed = True
    try:
        yield f
        failed = False
    finally:
        close_safely(f, failed)
