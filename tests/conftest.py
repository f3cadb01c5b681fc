"""Shared fixtures: the reference data folder beside the checkout, a loopback HTTP server, and quiet TensorFlow."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from fake_http import FakeServer, serving

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LUIGI_CONFIG_PATH", str(REPO / "configs" / "luigi.cfg"))
REFERENCE = Path(os.environ.get("PVL8DA_REFERENCE", REPO.parent / "shared" / "reference"))
REALDATA = Path(os.environ.get("PVL8DA_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The published weights and golden outputs (../shared/reference); tests skip, saying why, without it."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (set PVL8DA_REFERENCE)")
    return REFERENCE


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A threaded HTTP server on a free loopback port (``tests/fake_http.py``), stopped at teardown."""
    with serving() as state:
        yield state


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Small real Landsat-8 files (../shared/realdata); tests skip, saying why, without them."""
    if not REALDATA.is_dir():
        pytest.skip(f"real Landsat-8 test files not found at {REALDATA} (set PVL8DA_REALDATA)")
    return REALDATA
