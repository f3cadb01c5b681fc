"""Benchmark ConvertPV on a full-size synthetic scene (7700 x 7700 at 30 m) to 333M.

Prints JSON: wall time and peak resident memory of each run (each in a fresh process), and their medians.
Usage: python benchmarks/convert.py [--size 7700] [--runs 3] [--workdir /tmp/pvl8da-bench]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUN_ONE = """
import logging, sys, time
from pvl8da.conversion import convert_scene
t = time.perf_counter()
convert_scene(sys.argv[1], sys.argv[2], "333M", "biome", progress=False)
print(time.perf_counter() - t)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=7700)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/pvl8da-bench")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    scene_root = workdir / f"scene_{args.size}"
    scenes = sorted(scene_root.glob("LC8*")) if scene_root.exists() else []
    if not scenes:
        from pvl8da.synthetic import write_landsat8_scene

        t = time.perf_counter()
        scenes = [write_landsat8_scene(scene_root, shape=(args.size, args.size), seed=1, with_biome_mask=True,
                                       with_pan=False, lat=52.0, lon=5.5)]
        print(f"generated {scenes[0]} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    out = workdir / "out"
    walls, peaks = [], []
    for _ in range(args.runs):
        for old in out.glob("*.HDF5"):
            old.unlink()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", RUN_ONE, str(scenes[0]), str(out)], check=True,
                       stdout=subprocess.PIPE)
        walls.append(time.perf_counter() - t)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peaks.append(max(peak_kib, before) / 1024)
    print(json.dumps({
        "benchmark": "ConvertPV 333M",
        "scene_pixels": f"{args.size}x{args.size}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "wall_s": [round(w, 2) for w in walls],
        "peak_rss_mb": [round(p) for p in peaks],
        "median_wall_s": round(statistics.median(walls), 2),
        "median_peak_rss_mb": round(statistics.median(peaks)),
        "note": "wall time of a fresh process (imports included); peak RSS is the largest of the child processes so far",
    }, indent=2))


if __name__ == "__main__":
    main()
