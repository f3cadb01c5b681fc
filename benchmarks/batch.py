"""Batch conversion through luigid: scenes per minute with 1 and with 2 worker processes.

    .venv/bin/python benchmarks/batch.py [--scenes 8] [--size 2048] [--workers 1 2]

Writes synthetic Landsat-8 scenes once, then for each worker count starts a fresh ``luigid`` on a
free loopback port and that many ``python -m luigi --module tasks ConvertAll`` processes
(``--workers 1`` each, ConvertPV with ``--threads`` threads), and times them from launch to exit
(process start-up and scheduling included), ``--repeat`` times interleaved. Prints JSON (medians).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvl8da.synthetic import write_landsat8_scene  # noqa: E402

PYTHON = Path(sys.executable)
ENV = dict(os.environ, LUIGI_CONFIG_PATH=str(REPO / "configs" / "luigi.cfg"), NO_PROXY="127.0.0.1",
           no_proxy="127.0.0.1", PYTHONPATH=str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_luigid(work: Path) -> tuple[subprocess.Popen, int]:
    """A luigid on a free loopback port, once it answers."""
    port = free_port()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(PYTHON.with_name("luigid")), "--port", str(port), "--address", "127.0.0.1",
                             "--state-path", str(work / "state.pickle"), "--logdir", str(work / "logs")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=work)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", timeout=1).close()
            return proc, port
        except urllib.error.HTTPError:
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("luigid did not start")


def run_batch(scene_list: Path, out: Path, n_workers: int, threads: int, work: Path) -> float:
    """Wall seconds for ``n_workers`` worker processes to convert every scene in ``scene_list``."""
    luigid, port = start_luigid(work)
    try:
        command = [str(PYTHON), "-m", "luigi", "--module", "tasks", "ConvertAll", "--scenes", str(scene_list),
                   "--outfolder", str(out), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
                   "--workers", "1", "--ConvertPV-threads", str(threads), "--log-level", "WARNING"]
        start = time.perf_counter()
        procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=REPO)
                 for _ in range(n_workers)]
        codes = [p.wait(timeout=1800) for p in procs]
        wall = time.perf_counter() - start
    finally:
        luigid.terminate()
        luigid.wait(timeout=30)
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048, help="scene rows and columns (30 m pixels)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1, help="ConvertPV threads per task")
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count (interleaved; median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pvl8da-batch-bench-") as tmp:
        root = Path(tmp)
        scenes = [write_landsat8_scene(root / "scenes", shape=(args.size, args.size), seed=s, with_pan=False,
                                       lat=-50.0 + 13.0 * s, lon=-150.0 + 37.0 * s) for s in range(args.scenes)]
        scene_list = root / "scenes.txt"
        scene_list.write_text("\n".join(map(str, scenes)) + "\n")
        walls: dict[int, list[float]] = {n: [] for n in args.workers}
        for run in range(args.repeat):
            for n in args.workers:
                out = root / f"out-{n}-{run}"
                walls[n].append(run_batch(scene_list, out, n, args.threads, root / f"luigid-{n}-{run}"))
                if len(list(out.glob("*.HDF5"))) != args.scenes:
                    raise RuntimeError(f"{n} workers: not every scene was converted")
        results = [{"workers": n, "wall_s": round(statistics.median(w), 2), "runs_s": [round(x, 2) for x in w],
                    "scenes_per_minute": round(60.0 * args.scenes / statistics.median(w), 2)}
                   for n, w in walls.items()]
    base = min(results, key=lambda r: r["workers"])["scenes_per_minute"]
    speedup = {str(r["workers"]): round(r["scenes_per_minute"] / base, 2) for r in results}
    print(json.dumps({"scenes": args.scenes, "size": args.size, "threads_per_task": args.threads,
                      "cpus": os.cpu_count(), "results": results, "speedup_vs_fewest_workers": speedup},
                     indent=2))


if __name__ == "__main__":
    main()
