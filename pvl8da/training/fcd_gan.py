"""TrainFCD: the Fixed-Point GAN (WGAN-GP, n_critic, linear decay), validation F1, TensorBoard, resume."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pvl8da import runtime
from pvl8da.training import fcd_losses as losses
from pvl8da.training import skeleton
from pvl8da.training.configs import GANConfig
from pvl8da.evaluation.calibration import score_samples
from pvl8da.datasets.patch_data import PatchData
from pvl8da.storage.atomic import load_json
from pvl8da.evaluation.metrics import best_threshold, roc_auc
from pvl8da.models.fcd import build_discriminator, build_generator
from pvl8da.datasets.biome_scenes import RGB

log = logging.getLogger(__name__)

BEST, FINAL = skeleton.weight_names("generator")
WARMUP_LR = 1e-3


def linear_decay(step: int, total: int, decay_start: int, lr0: float) -> float:
    """Constant ``lr0`` until ``decay_start``, then linearly down to 0 at ``total``."""
    if step < decay_start:
        return lr0
    return lr0 * max(0.0, (total - step) / max(1, total - decay_start))


def cloud_map(generator: keras.Model, x: np.ndarray | tf.Tensor) -> tf.Tensor:
    """FCD cloud map: mean over bands of |G(x, clear) − x| / 2, shape (B, H, W)."""
    x = tf.convert_to_tensor(x, tf.float32)
    clear = tf.zeros((tf.shape(x)[0], 1), tf.float32)
    return tf.reduce_mean(tf.abs(runtime.float32(generator([x, clear])) - x), axis=-1) / 2.0


def load_generator(run_dir: str | Path, best: bool = True) -> keras.Model:
    """The trained generator of a TrainFCD folder (best validation checkpoint by default)."""
    run_dir = Path(run_dir)
    cfg = load_json(run_dir / skeleton.CONFIG)
    g = build_generator(cfg["width"], cfg["n_res"])
    path = run_dir / (BEST if best and (run_dir / BEST).is_file() else FINAL)
    g.load_weights(path)
    return g


class FCDTrainer:
    """Holds the networks, optimisers and checkpoint of one training folder."""

    def __init__(self, cfg: GANConfig, out_dir: Path, image_size: int):
        self.cfg, self.out_dir = cfg, out_dir
        self.w = losses.GANWeights(**cfg.weights)
        keras.utils.set_random_seed(cfg.seed)
        with runtime.dtype_policy(cfg.precision):
            self.G = build_generator(cfg.width, cfg.n_res)
            self.D = build_discriminator(image_size, cfg.d_width, cfg.d_layers)
        self.opt_g, self.opt_d = (
            runtime.training_optimizer(keras.optimizers.Adam(cfg.lr, beta_1=cfg.beta1, beta_2=cfg.beta2), cfg.precision)
            for _ in range(2))
        self.opt_g.build(self.G.trainable_variables)
        self.opt_d.build(self.D.trainable_variables)
        self.state = skeleton.Resumable(out_dir / skeleton.CHECKPOINTS, generator=self.G, discriminator=self.D,
                                        opt_g=self.opt_g, opt_d=self.opt_d)

    @tf.function
    def warmup_step(self, x, c, optimizer):
        """One generator step towards the identity ``G(x, c) = x`` for both domain bits; returns its L1."""
        with tf.GradientTape() as tape:
            loss = losses.l1_loss(self.G([x, c]), x) + losses.l1_loss(self.G([x, 1.0 - c]), x)
        grads = tape.gradient(loss, self.G.trainable_variables)
        optimizer.apply_gradients(zip(grads, self.G.trainable_variables))
        return loss / 2.0

    def identity_warmup(self, data: PatchData, steps: int, progress: bool) -> float:
        """Fit the generator to the identity before the GAN starts; returns the last batch's L1.

        The output ``tanh(Δ + x)`` is the identity only for ``Δ = atanh(x) − x``, which is far from 0 on
        the dark half of the DN range, so a fresh generator changes clear ground more than cloud and its
        cloud map starts inverted (validation AUC about 0.2). This gives the GAN a generator that starts
        from ``G(x, c) = x``.
        """
        optimizer = keras.optimizers.Adam(WARMUP_LR)
        rng = np.random.default_rng([self.cfg.seed, steps])
        loss = float("nan")
        for _ in tqdm(range(steps), disable=not progress, desc="identity warm-up", unit="it"):
            b = data.sample(self.cfg.batch_size, rng, self.cfg.augment)
            loss = float(self.warmup_step(tf.constant(b["x"]), tf.constant(b["label"]), optimizer))
        log.info("identity warm-up: %d steps, L1 %.4f", steps, loss)
        return loss

    @tf.function
    def d_step(self, x, c):
        """One critic update; returns its loss terms."""
        fake = runtime.float32(self.G([x, 1.0 - c]))
        alpha = tf.random.uniform((tf.shape(x)[0], 1, 1, 1))
        with tf.GradientTape() as tape:
            real_src, real_cls = self.D(x)
            fake_src, _ = self.D(fake)
            gp = losses.gradient_penalty(lambda z: self.D(z)[0], x, fake, alpha)
            terms = losses.discriminator_total(real_src, fake_src, real_cls, c, gp, self.w)
        grads = tape.gradient(self.opt_d.scale_loss(terms["total"]), self.D.trainable_variables)
        self.opt_d.apply_gradients(zip(grads, self.D.trainable_variables))
        return terms

    @tf.function
    def g_step(self, x, c):
        """One generator update (cross-domain and same-domain terms); returns its loss terms."""
        t = 1.0 - c
        with tf.GradientTape() as tape:
            fake = self.G([x, t])
            fake_src, fake_cls = self.D(fake)
            same = self.G([x, c])
            same_src, same_cls = self.D(same)
            terms = losses.generator_total(x, t, c, fake_src, fake_cls, same, same_src, same_cls,
                                           self.G([fake, c]), self.G([same, c]), self.w)
        grads = tape.gradient(self.opt_g.scale_loss(terms["total"]), self.G.trainable_variables)
        self.opt_g.apply_gradients(zip(grads, self.G.trainable_variables))
        return terms

    def set_lr(self, step: int) -> float:
        cfg = self.cfg
        start = cfg.iterations // 2 if cfg.decay_start is None else cfg.decay_start
        lr = linear_decay(step, cfg.iterations, start, cfg.lr)
        self.opt_g.learning_rate.assign(lr)
        self.opt_d.learning_rate.assign(lr)
        return lr


def validation_scores(generator: keras.Model, val: PatchData, limit: int, batch_size: int = 32) -> dict[str, float]:
    """Best pixel F1 over thresholds (and that threshold) and the ROC AUC of the cloud map on the first ``limit``
    validation patches; NaN without cloudy pixels."""
    values, truth = score_samples(lambda x: cloud_map(generator, x).numpy(), val.iter_batches(batch_size, limit))
    if not truth.any():
        return {"f1": float("nan"), "threshold": float("nan"), "auc": float("nan")}
    threshold, f1 = best_threshold(values, truth)
    return {"f1": f1, "threshold": threshold, "auc": roc_auc(values, truth)}


def _rgb_for_display(x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """RGB of ``x`` and of images in the same units, stretched with the 2–98 % range of ``x``."""
    rgb = x[..., list(RGB)]
    lo, hi = np.percentile(rgb, [2, 98])
    return [np.clip((a[..., list(RGB)] - lo) / max(hi - lo, 1e-6), 0, 1) for a in (x, *others)]


def sample_images(generator: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """TensorBoard images: inputs, translations to clear and to cloudy, and the clear difference map."""
    n = len(x)
    to_clear = generator([x, np.zeros((n, 1), np.float32)]).numpy()
    to_cloudy = generator([x, np.ones((n, 1), np.float32)]).numpy()
    diff = np.mean(np.abs(to_clear - x), axis=-1, keepdims=True) / 2.0
    rgb_x, rgb_clear, rgb_cloudy = _rgb_for_display(x, to_clear, to_cloudy)
    return {"samples/input": rgb_x, "samples/to_clear": rgb_clear, "samples/to_cloudy": rgb_cloudy,
            "samples/difference": diff / max(float(diff.max()), 1e-6)}


def train_fcd(train_h5: str | Path, val_h5: str | Path, out_dir: str | Path, cfg: GANConfig,
              progress: bool = True) -> dict:
    """Train (or resume) the Fixed-Point GAN in ``out_dir``; writes ``generator_best/final.weights.h5``,
    ``config.json`` and finally ``done.json`` (atomically) and returns its summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, val = PatchData(train_h5), PatchData(val_h5)
    trainer = FCDTrainer(cfg, out_dir, train.patch_size)
    run = skeleton.Run(out_dir, asdict(cfg), trainer.state, trainer.G, "generator",
                       skeleton.Cadence(cfg.iterations, cfg.log_every, cfg.val_every, cfg.checkpoint_every))
    sample_x = val.batch(np.arange(min(4, len(val))))["x"] if len(val) else train.batch(np.arange(4))["x"]
    if run.start == 0 and cfg.identity_warmup:
        trainer.identity_warmup(train, cfg.identity_warmup, progress)
    terms = {}

    def step_fn(step: int) -> dict:
        rng = np.random.default_rng([cfg.seed, step])
        lr = trainer.set_lr(step)
        b = train.sample(cfg.batch_size, rng, cfg.augment)
        x, c = tf.constant(b["x"]), tf.constant(b["label"])
        terms.update(trainer.d_step(x, c))
        if (step + 1) % cfg.n_critic == 0:
            terms.update(trainer.g_step(x, c))
        return {"lr": lr, **{f"loss/{k}": v for k, v in terms.items() if k != "total"}}

    def validate(done: int) -> float:
        scores = validation_scores(trainer.G, val, cfg.val_patches)
        log.info("step %d: validation F1 %.4f at %.4f, AUC %.4f", done, scores["f1"], scores["threshold"],
                 scores["auc"])
        run.writer.scalars({"val/auc": scores["auc"], "val/threshold": scores["threshold"]}, done)
        run.writer.images(sample_images(trainer.G, sample_x), done)
        return scores["f1"]

    rate = run.loop(step_fn, validate if len(val) else None, "TrainFCD", progress,
                    lambda s: {"d": float(s["loss/d_adv"]), "g": float(s.get("loss/g_adv", np.nan))})
    run.save_final()
    train.close()
    val.close()
    return run.done({"iterations": cfg.iterations, "best_val_f1": float(trainer.state.best),
                     "resumed_at": run.start, "steps_per_second": rate})
