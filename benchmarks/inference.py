"""Benchmark InferenceDA with the published weights on a synthetic Proba-V product (3000 × 3000 at 333M).

Each run is a fresh process; ``wall_s`` times the InferenceDA call (weights loading, tiling, writing the
product, the COG and the quicklook), ``process_wall_s`` adds the Python/TensorFlow imports; peak memory
is the process's own high-water mark (ru_maxrss). Prints JSON with every run and the medians.
Usage: python benchmarks/inference.py [--size 3000] [--runs 3] [--tile 512] [--workdir /tmp/pvl8da-bench]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("PVL8DA_REFERENCE", REPO.parent / "shared" / "reference"))

GENERATE = """
import sys
from pvl8da.synthetic import write_probav_product
size = int(sys.argv[2])
print(write_probav_product(sys.argv[1], shape=(size, size), seed=3, lat=45.0, lon=5.0))
"""
INFER = """
import json, resource, sys, time
t0 = time.perf_counter()
from pvl8da.inference.products import Tiling, infer_da
tile = int(sys.argv[5])
t1 = time.perf_counter()
infer_da(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], tiling=Tiling(tile=tile) if tile else None)
t2 = time.perf_counter()
print(json.dumps({"wall_s": t2 - t1, "import_s": t1 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tile", type=int, default=0, help="tile size (0: the default for this machine)")
    parser.add_argument("--workdir", default="/tmp/pvl8da-bench")
    args = parser.parse_args()
    # run from the repository root: `python -c` puts the working folder first on sys.path, and the code
    # measured must be this tree's, wherever the script is started from
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "TQDM_DISABLE": "1"}
    folder = Path(args.workdir) / f"probav_{args.size}"
    folder.mkdir(parents=True, exist_ok=True)
    products = sorted(folder.glob("PROBAV_L2A_*.HDF5"))
    if products:
        product = products[0]
    else:
        out = subprocess.run([sys.executable, "-c", GENERATE, str(folder), str(args.size)], env=env, cwd=REPO,
                             check=True, capture_output=True, text=True).stdout
        product = Path(out.strip().splitlines()[-1])
    weights = REFERENCE / "weights"
    runs = []
    for i in range(args.runs):
        dest = Path(args.workdir) / f"adapted_{args.size}.HDF5"
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", INFER, str(product), str(dest),
                              str(weights / "cloud_detection_l8.hdf5"), str(weights / "full.hdf5"), str(args.tile)],
                             env=env, cwd=REPO, check=True, capture_output=True, text=True).stdout
        run = json.loads(out.strip().splitlines()[-1])
        run["process_wall_s"] = time.perf_counter() - start
        run["mpixel_per_s"] = args.size ** 2 / 1e6 / run["wall_s"]
        runs.append(run)
        print(f"run {i + 1}: {run}", file=sys.stderr)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({"benchmark": "InferenceDA", "size": [args.size, args.size], "tile": args.tile or "default",
                      "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                                  "python": platform.python_version(),
                                  "load_average_at_end": os.getloadavg()},
                      "median": median, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
