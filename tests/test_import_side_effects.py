"""Importing pvl8da changes nothing outside it: no matplotlib backend chosen, no environment variable set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import os, sys
import matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
import pvl8da.plots.conversion, pvl8da.plots.evaluation, pvl8da.plots.inference
from pvl8da.plots.common import new_figure, save_figure
save_figure(new_figure(figsize=(1, 1)), sys.argv[1])
assert "matplotlib.pyplot" not in sys.modules
import pvl8da.evaluation.biome  # keras imports pyplot, which must not pick a backend either
assert matplotlib.rcParams._get_backend_or_none() == backend, matplotlib.rcParams._get_backend_or_none()
assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
"""


def test_importing_and_plotting_leave_backend_and_environment_alone(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TF_ENABLE_ONEDNN_OPTS")}
    proc = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "f.png")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_no_module_shadows_a_third_party_package():
    package = REPO / "pvl8da"
    names = {p.stem for p in package.rglob("*.py")} | {p.name for p in package.rglob("*") if p.is_dir()}
    assert not names & {"tensorboard", "tensorflow", "keras", "luigi", "matplotlib", "h5py", "rasterio", "numpy"}
