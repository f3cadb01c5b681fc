"""Shared fixtures: the reference data folder beside the checkout, and quiet TensorFlow."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pvl8da  # noqa: E402,F401  (before any test module loads TensorFlow: the same oneDNN setting as in use)

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LUIGI_CONFIG_PATH", str(REPO / "configs" / "luigi.cfg"))
REFERENCE = Path(os.environ.get("PVL8DA_REFERENCE", REPO.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The published weights and golden outputs (../shared/reference); tests skip, saying why, without it."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (set PVL8DA_REFERENCE)")
    return REFERENCE
