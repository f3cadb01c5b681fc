"""This project against the original implementation (IPL-UV/pvl8dagans), side by side, as JSON.

Runs both on the same inputs, alternating (original, this project, original, …), each run a fresh process
timed from start to exit, with its peak memory (the process's ru_maxrss from wait4):

- ``convert``: ConvertPV from the command line, synthetic 7700² Biome scene → 333M;
- ``inference``: InferenceDA from the command line, synthetic 3000² Proba-V product, published weights;
- ``train``: CycleGAN training, batch 48 of 64², the paper's losses, random data; samples per second after
  warm-up, each side's own train step (the process's wall time is not the figure here).

The original runs in its own virtual environment (tensorflow-cpu, h5py, rasterio, spectral, tifffile, luigi,
scipy, tqdm), from its own checkout, unmodified::

    python benchmarks/compare_original.py --original /tmp/orig --original-python /tmp/orig-venv/bin/python

This project runs with ``--python`` (default: the interpreter running this script) from this tree.
``--precision bfloat16`` measures this project's InferenceDA in reduced precision (the original has none).
Not a test: the figures depend on the machine, whose CPU model and flags the JSON reports.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from pvl8da.runtime import cpu_flags  # the project is installed in the interpreter running this script

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("PVL8DA_REFERENCE", REPO.parent / "shared" / "reference"))
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"}

GENERATE = """
import sys
from pvl8da.synthetic import write_landsat8_scene, write_probav_product
kind, folder, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "biome":
    print(write_landsat8_scene(folder, shape=(size, size), seed=1, collection=0, with_biome_mask=True,
                               with_pan=False, lat=52.0, lon=5.5))
else:
    print(write_probav_product(folder, shape=(size, size), seed=3, lat=45.0, lon=5.0))
"""

#: CycleGAN train steps on random data; argv: batch, size, warmup, steps. Prints samples per second.
TRAIN_ORIGINAL = """
import json, sys, time
import numpy as np
import tensorflow as tf
from dagans import cloud_model, cycle_gan, gan_model
batch, size, warmup, steps = map(int, sys.argv[1:5])
shape = (size, size, 4)
gens = [gan_model.generator_simple(shape, df=64, normtype="batchnorm") for _ in range(2)]
discs = [gan_model.disc_model(shape, df=8, activation=None) for _ in range(2)]
clouds = cloud_model.load_model((size, size), weight_decay=0, final_activation="sigmoid")
gan = cycle_gan.CycleGAN(genpvl8=gens[0], genl8pv=gens[1], discpv=discs[0], discl8=discs[1], l8_cloud_model=clouds,
                         gradient_penalty_fun=gan_model.gradient_penalty_fun("meschederreal"))
step = gan.train_step_fun(lr=1e-4, identity_lmbda=5, cycled_lmbda=5, segmentation_consistency_lmbda=1,
                          gradient_penalty_weight=10.0)
rng = np.random.default_rng(0)
pv, lu = (tf.constant(rng.uniform(0, 0.6, (batch,) + shape).astype(np.float32)) for _ in range(2))
for _ in range(warmup):
    float(step(pv, lu)[0])
start = time.perf_counter()
for _ in range(steps):
    out = step(pv, lu)
float(out[0])
print(json.dumps({"samples_per_s": steps * batch / (time.perf_counter() - start)}))
"""
TRAIN_MINE = """
import json, sys, time
import numpy as np
import tensorflow as tf
from pvl8da.models import da as models
from pvl8da.training import cyclegan as cg
batch, size, warmup, steps = map(int, sys.argv[1:5])
precision = sys.argv[5]
config = cg.CycleGANConfig(batch_size=batch, precision=precision)
trainer = cg.CycleGANTrainer(config, lambda: cg.Networks(
    *(models.build_generator(config.df_gen, config.normtype) for _ in range(2)),
    *(models.build_discriminator(config.df_disc) for _ in range(2)), models.build_cloud_unet()))
rng = np.random.default_rng(0)
pv, lu = (tf.constant(rng.uniform(0, 0.6, (batch, size, size, 4)).astype(np.float32)) for _ in range(2))
for _ in range(warmup):
    float(trainer.train_step(pv, lu)["loss_G"])
start = time.perf_counter()
for _ in range(steps):
    losses = trainer.train_step(pv, lu)
float(losses["loss_G"])
print(json.dumps({"samples_per_s": steps * batch / (time.perf_counter() - start)}))
"""


def cpu() -> dict:
    """CPU model, core count and the SIMD flags that matter to the kernels."""
    model = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def run_once(cmd: list[str], cwd: Path, env: dict) -> dict:
    """One fresh process: wall time to exit, its peak memory (MB) and what it printed as JSON."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives the child's own peak memory; its pipes are read in threads so that it never blocks on them
    chunks: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: chunks.__setitem__(n, s.read()))
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for r in readers:
        r.join()
    out, err = chunks["out"], chunks["err"]
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({code}):\n{err[-3000:]}")
    run = {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024), "log": err[-2000:]}
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if last.startswith("{"):
        run.update(json.loads(last))
    return run


def generate(kind: str, folder: Path, size: int, python: str) -> Path:
    """The synthetic input (``biome`` scene or ``probav`` product) of ``size``², made once and reused."""
    pattern = "LC8*" if kind == "biome" else "PROBAV_L2A_*.HDF5"
    found = sorted(folder.glob(pattern)) if folder.exists() else []
    if found:
        return found[0]
    done = subprocess.run([python, "-c", GENERATE, kind, str(folder), str(size)], cwd=REPO, check=True,
                          stdout=subprocess.PIPE, text=True, env=mine_env())
    return Path(done.stdout.strip().splitlines()[-1])


def mine_env() -> dict:
    return {**os.environ, **ENV, "PYTHONPATH": str(REPO)}


def original_env() -> dict:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **ENV}


def clear(folder: Path) -> None:
    """Empty a previous run's output folder, so that Luigi runs the task again."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def jobs(args) -> dict:
    """Per job: (original command, this project's command, output folders emptied before each run, figure)."""
    work, wanted = Path(args.workdir), {}
    if "convert" in args.jobs:
        scene = generate("biome", work / f"scene_{args.convert_size}", args.convert_size, args.python)
        out_o, out_m = work / "convert_original", work / "convert_mine"
        wanted["convert"] = (
            [args.original_python, "convert_landsat_probav.py", "ConvertPV", "--l8img", str(scene),
             "--outfolder", str(out_o), "--type-product", "biome", "--resolution", "333M"],
            [args.python, "-m", "luigi", "--module", "tasks", "ConvertPV", "--local-scheduler", "--l8img", str(scene),
             "--type-product", "biome", "--outfolder", str(out_m), "--resolution", "333M"],
            [out_o, out_m], "wall_s")
    if "inference" in args.jobs:
        product = generate("probav", work / f"probav_{args.inference_size}", args.inference_size, args.python)
        dest_o, dest_m = work / "inference_original" / "adapted.HDF5", work / "inference_mine" / "adapted.HDF5"
        weights = REFERENCE / "weights"
        wanted["inference"] = (
            [args.original_python, "inference_da.py", "InferenceDA", "--pvimage", str(product),
             "--image-dest", str(dest_o)],
            [args.python, "-m", "luigi", "--module", "tasks", "InferenceDA", "--local-scheduler",
             "--pvimage", str(product), "--image-dest", str(dest_m),
             "--cloud-detection-weights", str(weights / "cloud_detection_l8.hdf5"),
             "--dagans-weights", str(weights / "full.hdf5"), "--precision", args.precision],
            [dest_o.parent, dest_m.parent], "wall_s")
    if "train" in args.jobs:
        train = [str(args.batch_size), str(args.patch), str(args.warmup), str(args.steps)]
        wanted["train"] = ([args.original_python, "-c", TRAIN_ORIGINAL, *train],
                           [args.python, "-c", TRAIN_MINE, *train, args.precision], [], "samples_per_s")
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", required=True, help="checkout of IPL-UV/pvl8dagans")
    parser.add_argument("--original-python", required=True, help="the interpreter of the original's environment")
    parser.add_argument("--python", default=sys.executable, help="this project's interpreter")
    parser.add_argument("--jobs", nargs="+", default=["convert", "inference", "train"],
                        choices=["convert", "inference", "train"])
    parser.add_argument("--pairs", type=int, default=3, help="alternating (original, this project) pairs per job")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="this project's InferenceDA and training precision")
    parser.add_argument("--convert-size", type=int, default=7700)
    parser.add_argument("--inference-size", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--workdir", default="/tmp/pvl8da-compare")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpu": cpu(), "python": platform.python_version()}, "pairs": args.pairs,
              "precision": args.precision, "jobs": {}}
    sides = (("original", Path(args.original).resolve(), original_env()), ("mine", REPO, mine_env()))
    for name, (cmd_o, cmd_m, outputs, figure) in jobs(args).items():
        runs = {"original": [], "mine": []}
        for i in range(args.pairs):
            for (side, cwd, env), cmd in zip(sides, (cmd_o, cmd_m)):
                for path in outputs:
                    clear(path)
                run = run_once(cmd, cwd, env)
                log = run.pop("log")
                if outputs and not any(outputs[side == "mine"].iterdir()):  # Luigi exits 0 when a task fails
                    raise RuntimeError(f"{name}: the {side} run wrote nothing:\n{log}")
                runs[side].append(run)
                print(f"{name} {side} {i + 1}: {run}", file=sys.stderr, flush=True)
        median = {side: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for side, rs in runs.items()}
        faster = (median["mine"][figure] / median["original"][figure] if figure == "samples_per_s"
                  else median["original"][figure] / median["mine"][figure])
        report["jobs"][name] = {"figure": figure, "median": median, "speed_ratio": round(faster, 2),
                                "memory_ratio": round(median["original"]["peak_rss_mb"]
                                                      / median["mine"]["peak_rss_mb"], 2),
                                "runs": runs}
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
