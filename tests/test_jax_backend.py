"""The README's InferenceDA command, run through ``python -m luigi`` on Keras' JAX backend (CPU): the product it
writes matches the golden reference as closely as the TensorFlow run does, and TensorFlow is never imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

from test_inference import GOLDEN, assert_matches_golden  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
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

    assert_matches_golden(src, dest)
