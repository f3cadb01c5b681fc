"""The README's InferenceDA command, run through ``python -m luigi`` on Keras' JAX backend (CPU): the product it
writes matches the golden reference as closely as the TensorFlow run does, and TensorFlow is never imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("jax")

from pvl8da.sensors.probav import PV_BANDS, ProbaVProduct, band_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GOLDEN = "golden/inference/PROBAV_L2A_20150704_101530_2_333M_V101.HDF5"
TIMEOUT_S = 300

#: ``python -m luigi`` (runpy, as ``-m`` does), then one JSON line saying which backend ran and whether
#: TensorFlow was imported, and Luigi's exit status as this process's.
WRAPPER = """
import json, runpy, sys
sys.argv = ["luigi", *sys.argv[1:]]
try:
    runpy.run_module("luigi", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as stop:
    code = stop.code or 0
import keras
print("PVL8DA_BACKEND_CHECK " + json.dumps({"backend": keras.backend.backend(), "jax": "jax" in sys.modules,
                                            "tensorflow": "tensorflow" in sys.modules}))
sys.exit(code)
"""


def test_inference_da_command_on_jax(reference_dir, tmp_path):
    src = reference_dir / GOLDEN
    dest = tmp_path / "adapted.HDF5"
    args = ["--module", "tasks", "InferenceDA", "--local-scheduler", "--pvimage", src, "--image-dest", dest,
            "--cloud-detection-weights", reference_dir / "weights/cloud_detection_l8.hdf5",
            "--dagans-weights", reference_dir / "weights/full.hdf5"]
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), MPLBACKEND="Agg",
               LUIGI_CONFIG_PATH=str(REPO / "configs" / "luigi.cfg"))
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{output[-6000:]}"
    assert "1 ran successfully" in output and "This progress looks :)" in output, output[-6000:]
    assert "PVL8DA_BACKEND_CHECK " in output, output[-6000:]
    check = json.loads(output.split("PVL8DA_BACKEND_CHECK ", 1)[1].splitlines()[0])
    assert check == {"backend": "jax", "jax": True, "tensorflow": False}, check
    assert dest.is_file()

    ref = np.load(f"{src}.reference.npz")
    with h5py.File(dest, "r") as f:
        dn = np.stack([f[band_path(b)][:] for b in PV_BANDS], axis=-1)
        cm = f["CM_PVDAGANS"][:]
    assert ((cm < 0) == (ref["cm_pvdagans"] < 0)).all() and ((dn < 0) == (ref["adapted_toa_dn"] < 0)).all()
    valid = (cm >= 0) & (ref["cm_pvdagans"] >= 0)
    diff = np.abs(cm - ref["cm_pvdagans"])[valid]
    assert np.percentile(diff, 99.9) <= 0.01 and diff.max() <= 0.05
    assert ((cm >= 0.5) == (ref["cm_pvdagans"] >= 0.5))[valid].mean() >= 0.999
    assert np.abs(dn.astype(int) - ref["adapted_toa_dn"])[valid].mean() <= 1
    with ProbaVProduct(src) as p:
        invalid = p.invalid()
    assert (cm[invalid] == -1).all() and (dn[invalid] == -1).all()
