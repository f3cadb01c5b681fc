"""GPU check of InferenceDA on Keras' JAX backend, in float32 and bfloat16 (run by ``benchmarks/gpu_check.sh``).

``main`` prints one JSON object. Every measurement runs in a fresh process (``golden`` and ``big``), so each
precision's peak GPU memory is its own. ``golden``: the published weights on the golden 800² product, compared
with its ``.reference.npz`` (cloud probability on pixels valid in both), and the networks alone timed on
batches of the tiles a ``size``² product gets. ``big``: ``infer_da`` on a synthetic ``size``² product, timed end
to end (weights loading, compilation, reading, writing the product, the COG and the quicklook). The synthetic
product is written on the CPU while the golden runs use the GPU. Steps share one deadline; a step that fails or
runs out of time is reported as such and the others still run.
Usage: python benchmarks/gpu_check.py main --size 10000 --carried .whl --workdir /tmp/pvl8da-gpu-check --deadline-s 420
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PRECISIONS = ("float32", "bfloat16")
GOLDEN = "PROBAV_L2A_20150704_101530_2_333M_V101.HDF5"
WEIGHTS = ("cloud_detection_l8.hdf5", "full.hdf5")
#: Longest any one golden or big run may take (the shared deadline may cut it shorter).
GOLDEN_TIMEOUT_S, BIG_TIMEOUT_S = 150, 200


def _device() -> dict:
    """The JAX device measured and its peak memory so far (``None`` where the platform keeps no statistics)."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return {"platform": device.platform, "device": device.device_kind,
            "peak_memory_gib": None if peak is None else round(peak / 2**30, 3)}


def _weights(carried: Path) -> list[str]:
    """The carried published weights: cloud U-Net, then PV → LU generator."""
    return [str(carried / "weights" / name) for name in WEIGHTS]


def golden(precision: str, carried: Path, workdir: Path, size: int) -> dict:
    """Agreement with the golden reference, and the networks' own throughput on a ``size``² product's tiles."""
    import h5py
    import numpy as np

    from pvl8da.inference.products import TilePredictor, default_tiling, infer_da, load_models
    from pvl8da.sensors.probav import PV_BANDS, ProbaVProduct

    src = carried / "golden" / GOLDEN
    dest = workdir / f"golden_{precision}.HDF5"
    start = time.perf_counter()
    outputs = infer_da(src, dest, *_weights(carried), precision=precision, quicklook=False)
    wall = time.perf_counter() - start
    with h5py.File(dest, "r") as f:
        cm = f["CM_PVDAGANS"][:]
    ref = np.load(f"{src}.reference.npz")["cm_pvdagans"]
    valid = (cm >= 0) & (ref >= 0)
    diff = np.abs(cm - ref)[valid]
    result = {"wall_s": round(wall, 2), "invalid_identical": bool(((cm < 0) == (ref < 0)).all()),
              "binary_agreement": float(((cm >= 0.5) == (ref >= 0.5))[valid].mean()),
              "mean_abs_diff": float(diff.mean()), "p99_9_abs_diff": float(np.percentile(diff, 99.9)),
              "max_abs_diff": float(diff.max())}

    tiling = default_tiling((size, size))
    with ProbaVProduct(src) as pv:
        scale, offset = zip(*(pv.scale_offset(b) for b in PV_BANDS))
    predictor = TilePredictor(*load_models(*_weights(carried)), tiling, scale, offset, precision)
    x = np.random.default_rng(0).random((tiling.batch, tiling.size, tiling.size, 5), np.float32)
    x[..., 4] = 0.0
    start = time.perf_counter()
    predictor(x)
    first = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 2.0:
        predictor(x)
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    result["networks"] = {"tile": tiling.tile, "padded": tiling.size, "batch": tiling.batch,
                          "first_call_s": round(first, 2), "call_s": round(per_call, 4),
                          "core_mpixel_s": round(tiling.batch * tiling.tile ** 2 / per_call / 1e6, 2)}
    for path in outputs.paths():
        path.unlink(missing_ok=True)
    return {**result, **_device()}


def big(precision: str, carried: Path, workdir: Path, product: Path) -> dict:
    """``infer_da`` on the synthetic product, timed end to end, with the peak device memory it took."""
    from pvl8da.inference.products import infer_da
    from pvl8da.sensors.probav import ProbaVProduct

    with ProbaVProduct(product) as pv:
        height, width = pv.shape
    dest = workdir / f"big_{precision}.HDF5"
    start = time.perf_counter()
    outputs = infer_da(product, dest, *_weights(carried), precision=precision)
    wall = time.perf_counter() - start
    for path in outputs.paths():
        path.unlink(missing_ok=True)
    mpixel = height * width / 1e6
    return {"wall_s": round(wall, 2), "mpixel": mpixel, "mpixel_s": round(mpixel / wall, 3), **_device()}


def generate(folder: Path, size: int) -> dict:
    """Write the synthetic ``size``² Proba-V product (seed 3 at 45° N, 5° E) and return its path."""
    from pvl8da.synthetic import write_probav_product

    start = time.perf_counter()
    path = write_probav_product(folder, shape=(size, size), seed=3, lat=45.0, lon=5.0)
    return {"product": str(path), "wall_s": round(time.perf_counter() - start, 2)}


def _child(args: list[str], timeout: float) -> subprocess.Popen | dict:
    """This script with ``args`` in a fresh process (an error dict when no time is left)."""
    if timeout < 5:
        return {"error": "skipped: no time left"}
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc: subprocess.Popen | dict, timeout: float) -> dict:
    """The JSON a child printed last, or what went wrong."""
    if isinstance(proc, dict):
        return proc
    try:
        out, err = proc.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": f"exit status {proc.returncode}", "stderr_tail": err[-1500:]}
    return json.loads(lines[-1])


def main(args: argparse.Namespace) -> dict:
    """Golden runs (while the synthetic product is written), then the big runs; one dict for the JSON."""
    from importlib.metadata import version

    deadline = time.monotonic() + args.deadline_s

    def left(cap: float = float("inf")) -> float:
        return min(cap, deadline - time.monotonic())

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    common = ["--carried", str(args.carried), "--workdir", str(workdir), "--size", str(args.size)]
    report: dict = {"gpu": None, "keras_backend": os.environ["KERAS_BACKEND"], "jax": version("jax"),
                    "keras": version("keras"), "size": args.size}
    folder = workdir / f"probav_{args.size}"
    existing = sorted(folder.glob("PROBAV_L2A_*.HDF5"))
    maker = ({"product": str(existing[0]), "wall_s": 0.0, "reused": True} if existing
             else _child(["generate", *common, "--product", str(folder)], left()))
    report["golden"] = {p: _result(_child(["golden", p, *common], left(GOLDEN_TIMEOUT_S)), left(GOLDEN_TIMEOUT_S))
                        for p in PRECISIONS}
    report["generate"] = made = _result(maker, left())
    report["big"] = {p: (_result(_child(["big", p, *common, "--product", made["product"]], left(BIG_TIMEOUT_S)),
                                 left(BIG_TIMEOUT_S)) if "product" in made else {"error": "no synthetic product"})
                     for p in PRECISIONS}
    platforms = {r["platform"] for part in ("golden", "big") for r in report[part].values() if "platform" in r}
    report["gpu"] = platforms == {"gpu"} if platforms else None
    return report


def parse() -> argparse.Namespace:
    """Command line: the step, its precision, and where things are."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("main", "golden", "big", "generate"))
    parser.add_argument("precision", nargs="?", choices=PRECISIONS, default="float32")
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--carried", type=Path, default=Path(".whl"), help="folder with weights/ and golden/")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pvl8da-gpu-check"))
    parser.add_argument("--product", type=Path, help="generate: its folder; big: the product")
    parser.add_argument("--deadline-s", type=float, default=420.0, help="main: seconds all steps may take")
    return parser.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pvl8da, wherever started from
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # peaks are what each run takes
    options = parse()
    if options.step == "main":
        out = main(options)
    elif options.step == "golden":
        out = golden(options.precision, options.carried, options.workdir, options.size)
    elif options.step == "big":
        out = big(options.precision, options.carried, options.workdir, options.product)
    else:
        out = generate(options.product, options.size)
    print(json.dumps(out))
