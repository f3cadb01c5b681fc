"""Training throughput of FCD (Fixed-Point GAN critic/generator steps and U-Net steps); prints JSON.

python benchmarks/fcd_train.py [--width 64] [--n-res 6] [--d-width 64] [--unet-width 64] [--batch 16] [--steps 10]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pvl8da.models.fcd import build_unet
from pvl8da.training.fcd_gan import FCDTrainer, GANConfig
from pvl8da.training.fcd_unet import _train_step_fn


def _rate(fn, steps: int) -> float:
    fn()  # trace
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--n-res", type=int, default=6)
    p.add_argument("--d-width", type=int, default=None, help="critic width (default: --width)")
    p.add_argument("--unet-width", type=int, default=64)
    p.add_argument("--unet-batch", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default="/tmp/fcd_benchmark")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (a.batch, a.size, a.size, 10)).astype(np.float32))
    c = tf.constant(rng.integers(0, 2, (a.batch, 1)).astype(np.float32))
    trainer = FCDTrainer(GANConfig(width=a.width, n_res=a.n_res, d_width=a.d_width or a.width), Path(a.out), a.size)
    d_rate = _rate(lambda: trainer.d_step(x, c)["total"].numpy(), a.steps)
    g_rate = _rate(lambda: trainer.g_step(x, c)["total"].numpy(), max(1, a.steps // 2))
    unet = build_unet(a.unet_width)
    step = _train_step_fn(unet, keras.optimizers.Adam(1e-4), 1.0)
    ux = tf.constant(rng.uniform(-1, 1, (a.unet_batch, a.size, a.size, 10)).astype(np.float32))
    ones = tf.ones((a.unet_batch, a.size, a.size, 1))
    label = tf.ones((a.unet_batch, 1))
    u_rate = _rate(lambda: step(ux, ones, ones, label)["total"].numpy(), max(1, a.steps // 2))
    gan_iter = 1.0 / (1.0 / d_rate + 1.0 / (5 * g_rate))  # n_critic 5: one G step every 5 iterations
    print(json.dumps({
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "gan": {"width": a.width, "n_res": a.n_res, "d_width": a.d_width or a.width, "batch": a.batch, "size": a.size,
                "critic_steps_per_s": round(d_rate, 3), "generator_steps_per_s": round(g_rate, 3),
                "iterations_per_s": round(gan_iter, 3)},
        "unet": {"width": a.unet_width, "batch": a.unet_batch, "steps_per_s": round(u_rate, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
