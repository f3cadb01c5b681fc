"""CycleGAN training throughput: samples per second (batch 48, 64 × 64 patches) after warm-up, as JSON.

    python benchmarks/train_cyclegan.py [--batch-size 48] [--steps 10] [--repeats 3]

Random data and a randomly initialised (frozen) cloud U-Net: the speed does not depend on the values.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pvl8da.training import cyclegan as cg  # noqa: E402
from pvl8da.models import da as models  # noqa: E402


def networks(config: cg.CycleGANConfig) -> cg.Networks:
    """The SPEC §4 networks, cloud U-Net randomly initialised."""
    return cg.Networks(
        models.build_generator(config.df_gen, config.normtype), models.build_generator(config.df_gen, config.normtype),
        models.build_discriminator(config.df_disc), models.build_discriminator(config.df_disc),
        models.build_cloud_unet())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = cg.CycleGANConfig(batch_size=args.batch_size)
    trainer = cg.CycleGANTrainer(config, lambda: networks(config))
    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.size, args.size, 4)
    pv = tf.constant(rng.uniform(0, 0.6, shape).astype(np.float32))
    lu = tf.constant(rng.uniform(0, 0.6, shape).astype(np.float32))
    for _ in range(args.warmup):
        float(trainer.train_step(pv, lu)["loss_G"])
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.steps):
            losses = trainer.train_step(pv, lu)
        float(losses["loss_G"])
        rates.append(args.steps * args.batch_size / (time.perf_counter() - start))
    print(json.dumps({
        "benchmark": "train_cyclegan",
        "samples_per_second_median": round(statistics.median(rates), 2),
        "samples_per_second": [round(r, 2) for r in rates],
        "batch_size": args.batch_size, "patch": args.size, "steps_per_repeat": args.steps,
        "device": ", ".join(d.name for d in tf.config.list_logical_devices()),
        "replicas": trainer.strategy.num_replicas_in_sync, "cpu_count": os.cpu_count(), "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
