"""benchmarks/gpu_check.sh, as a session with a lent GPU runs it: on a machine without one it says so and exits 0."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_without_a_gpu_says_so_and_exits_0():
    env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS="cpu")  # JAX sees no GPU, whatever the machine
    env.pop("GPU_CHECK_ALLOW_CPU", None)
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "gpu": False, "message": "no GPU visible to JAX; nothing measured"}
