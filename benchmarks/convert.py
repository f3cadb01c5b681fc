"""Benchmark ConvertPV on a full-size synthetic scene (7700 x 7700 pixels at 30 m) to 333M.

Each run is a fresh process: its wall time includes the imports, and its peak memory is the
process's own high-water mark (VmHWM). Prints JSON with every run and the medians.
Usage: python benchmarks/convert.py [--size 7700] [--runs 3] [--workdir /tmp/pvl8da-bench]
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

#: Subprocesses run from the repository root (`python -c` puts the working folder first on sys.path), so
#: the code measured is this tree's wherever the script is started from.
REPO = Path(__file__).resolve().parents[1]

GENERATE = """
import sys
from pvl8da.synthetic import write_landsat8_scene
size = int(sys.argv[2])
print(write_landsat8_scene(sys.argv[1], shape=(size, size), seed=1, with_biome_mask=True, with_pan=False,
                           lat=52.0, lon=5.5))
"""
CONVERT = """
import sys
from pvl8da.conversion import convert_scene
convert_scene(sys.argv[1], sys.argv[2], "333M", "biome", progress=False)
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM")))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=7700)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/pvl8da-bench")
    args = parser.parse_args()
    scene_root = Path(args.workdir) / f"scene_{args.size}"
    scenes = sorted(scene_root.glob("LC8*")) if scene_root.exists() else []
    if not scenes:
        done = subprocess.run([sys.executable, "-c", GENERATE, str(scene_root), str(args.size)], check=True,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
        scenes = [Path(done.stdout.strip().splitlines()[-1])]
    out = Path(args.workdir) / "out"
    walls, peaks = [], []
    for _ in range(args.runs):
        for old in out.glob("*.HDF5"):
            old.unlink()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CONVERT, str(scenes[0]), str(out)], check=True,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
        walls.append(time.perf_counter() - start)
        peaks.append(int(done.stdout.split()[-1]) / 1024)
    print(json.dumps({
        "benchmark": "ConvertPV 333M, Biome-type scene",
        "scene_pixels": f"{args.size}x{args.size}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "wall_s": [round(w, 2) for w in walls],
        "peak_rss_mb": [round(p) for p in peaks],
        "median_wall_s": round(statistics.median(walls), 2),
        "median_peak_rss_mb": round(statistics.median(peaks)),
    }, indent=2))


if __name__ == "__main__":
    main()
