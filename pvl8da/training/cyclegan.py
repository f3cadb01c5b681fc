"""CycleGAN domain adaptation Proba-V (PV) <-> Landsat-8 upscaled to Proba-V (LU), SPEC §5.

G: PV -> LU and F: LU -> PV generators, PatchGAN discriminators D_LU and D_PV (logits), and a frozen
cloud U-Net for the segmentation-consistency term. Training is a ``tf.function`` step run through a
``tf.distribute`` strategy (all visible GPUs, or the default strategy on CPU), checkpointed every
epoch and resumed from the last checkpoint. Each epoch's PV -> LU generator is scored without Proba-V
labels on held-out pairs (:mod:`pvl8da.evaluation.selection`) and the best epoch is the one kept.
"""
from __future__ import annotations

import csv
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import h5py
import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pvl8da import runtime
from pvl8da.storage.atomic import atomic_path, load_json, save_json_atomic, save_weights_atomic
from pvl8da.evaluation.selection import cloud_agreement
from pvl8da.models.folded import folded_graph
from pvl8da.training import skeleton, summaries
from pvl8da.training.augment import d4_transform
from pvl8da.training.cyclegan_config import CycleGANConfig, output_paths
from pvl8da.training.fcd_losses import l1_loss
from pvl8da.errors import InputError

log = logging.getLogger(__name__)

KL_EPS = 1e-6


# ----------------------------------------------------------------------------------------- losses
def generator_gan_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating GAN loss of a generator: mean sigmoid cross-entropy of its fakes against label 1."""
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def discriminator_gan_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """½ (cross-entropy of real against 1 + cross-entropy of fake against 0)."""
    return 0.5 * (tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits)))


def binary_kl(p: tf.Tensor, q: tf.Tensor, eps: float = KL_EPS) -> tf.Tensor:
    """Mean binary KL divergence KL(p ‖ q) of two probability maps, both clipped to [eps, 1 - eps]."""
    p = tf.clip_by_value(p, eps, 1.0 - eps)
    q = tf.clip_by_value(q, eps, 1.0 - eps)
    return tf.reduce_mean(p * tf.math.log(p / q) + (1.0 - p) * tf.math.log((1.0 - p) / (1.0 - q)))


def discriminate(discriminator: Callable, real: tf.Tensor, fake: tf.Tensor,
                 r1: bool = True) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Logits of real and fake samples from one discriminator call on their concatenation, and the R1
    penalty of the real ones ('meschederreal'; 0 with ``r1=False``).

    Real and fake go through the network as one batch so that its batch normalisation sees both: two
    separate calls would normalise each batch on its own statistics and hide from the discriminator a
    difference of mean radiometry between the domains. The penalty is the batch mean of the squared L2
    norm of the gradient, with respect to each real sample, of that sample's mean logit over the patch map.
    """
    n = tf.shape(real)[0]
    both = tf.concat([real, fake], axis=0)
    with tf.GradientTape() as tape:
        tape.watch(both)
        logits = runtime.float32(discriminator(both, training=True))
        real_logits, fake_logits = logits[:n], logits[n:]
        per_sample = tf.reduce_mean(real_logits, axis=list(range(1, len(logits.shape))))
        total = tf.reduce_sum(per_sample)
    if not r1:
        return real_logits, fake_logits, tf.constant(0.0)
    grad = tape.gradient(total, both)[:n]
    penalty = tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))))
    return real_logits, fake_logits, penalty


def recalibrate_batchnorm(model: keras.Model, x: np.ndarray) -> None:
    """Set every BatchNormalization layer's moving mean and variance to the statistics of one forward
    pass over ``x`` in training mode ("precise BN"), so inference matches the current weights even
    after few steps. Trainable weights are untouched."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(tf.convert_to_tensor(x), training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


# ----------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PatchPairs:
    """Co-registered ``pv`` and ``lu`` patches (N, S, S, 4) float32 and the pair (scene) each comes from."""

    pv: np.ndarray
    lu: np.ndarray
    pair: np.ndarray

    def __len__(self) -> int:
        return len(self.pv)

    def subset(self, index: np.ndarray) -> PatchPairs:
        return PatchPairs(self.pv[index], self.lu[index], self.pair[index])


def load_pairs(dataset: str | os.PathLike) -> PatchPairs:
    """The ``PV``/``LU`` patches and ``PAIR`` indices of a pseudo-simultaneous dataset file (no ``PAIR``: one pair)."""
    dataset = Path(dataset)
    if not dataset.is_file():
        raise InputError(f"{dataset}: pseudo-simultaneous dataset not found")
    try:
        with h5py.File(dataset, "r") as f:
            missing = [k for k in ("PV", "LU") if k not in f]
            if missing:
                raise InputError(f"{dataset}: datasets {missing} missing (need PV and LU)")
            pv = f["PV"][...].astype(np.float32)
            lu = f["LU"][...].astype(np.float32)
            pair = f["PAIR"][...].astype(np.int64) if "PAIR" in f else np.zeros(len(pv), np.int64)
    except OSError as e:
        raise InputError(f"{dataset}: not a readable HDF5 file ({e})") from e
    if pv.shape != lu.shape or pv.ndim != 4 or pv.shape[-1] != 4 or pv.shape[1] != pv.shape[2]:
        raise InputError(f"{dataset}: PV {pv.shape} and LU {lu.shape} must both be (N, S, S, 4)")
    if pv.shape[0] == 0:
        raise InputError(f"{dataset}: the dataset holds no patch")
    return PatchPairs(pv, lu, pair)


def split_by_scene(pairs: PatchPairs, val_scenes: int, seed: int) -> tuple[PatchPairs, PatchPairs | None]:
    """Training patches and the patches of ``val_scenes`` held-out pairs (chosen with ``seed``; None for 0)."""
    if val_scenes == 0:
        return pairs, None
    scenes = np.unique(pairs.pair)
    if len(scenes) <= val_scenes:
        raise InputError(f"the dataset holds {len(scenes)} pair(s); holding out {val_scenes} for validation "
                         f"(model selection) needs at least {val_scenes + 1}: build it from more pairs, or pass "
                         "--val-scenes 0 to keep the last epoch without selection")
    held = np.random.default_rng([seed, 11]).permutation(scenes)[:val_scenes]
    is_val = np.isin(pairs.pair, held)
    log.info("validation: %d patches of pair(s) %s; training: %d patches", is_val.sum(), sorted(held.tolist()),
             (~is_val).sum())
    return pairs.subset(~is_val), pairs.subset(is_val)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled sample indices of one epoch, as full batches (a function of seed and epoch only)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    steps = n // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


# ----------------------------------------------------------------------------------------- networks
@dataclass
class Networks:
    """The five models of a training run; ``cloud`` is frozen."""

    gen_pv2lu: keras.Model
    gen_lu2pv: keras.Model
    disc_lu: keras.Model
    disc_pv: keras.Model
    cloud: keras.Model


def check_cloud_weights(path: str | os.PathLike | None) -> Path:
    """The cloud-model weight file, or an InputError naming it when it is missing."""
    if path is None or not Path(path).is_file():
        raise InputError(f"cloud detection weights {path} not found (pass --weights-cloud-detection)")
    return Path(path)


def build_networks(config: CycleGANConfig, cloud_weights: str | os.PathLike) -> Networks:
    """The SPEC §4 architectures (``pvl8da.models.da``) with the frozen cloud U-Net loaded from ``cloud_weights``."""
    from pvl8da.models import da as models

    cloud = models.build_cloud_unet()
    models.load_weights_checked(cloud, check_cloud_weights(cloud_weights))
    cloud.trainable = False
    return Networks(
        gen_pv2lu=models.build_generator(df=config.df_gen, normtype=config.normtype),
        gen_lu2pv=models.build_generator(df=config.df_gen, normtype=config.normtype),
        disc_lu=models.build_discriminator(df=config.df_disc),
        disc_pv=models.build_discriminator(df=config.df_disc),
        cloud=cloud,
    )


def select_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs, or the default (single-device) strategy without one."""
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# ----------------------------------------------------------------------------------------- trainer
LOSS_NAMES = ("loss_G", "loss_F", "loss_D_LU", "loss_D_PV", "gan_G", "gan_F", "identity_G", "identity_F",
              "cycle", "segmentation_G", "segmentation_F", "gp_D_LU", "gp_D_PV")


class CycleGANTrainer:
    """One training run: networks, optimisers, the distributed train step, the shared skeleton's resumable
    checkpoint (:class:`pvl8da.training.skeleton.Resumable`: its step counts epochs, its best score is the
    validation agreement), per-epoch selection and summaries."""

    def __init__(self, config: CycleGANConfig, networks_fn: Callable[[], Networks],
                 strategy: tf.distribute.Strategy | None = None) -> None:
        self.config = config
        self.strategy = strategy or select_strategy()
        with self.strategy.scope(), runtime.dtype_policy(config.precision):
            self.nets = networks_fn()
            self.nets.cloud.trainable = False
            self.optimizers = {
                key: runtime.training_optimizer(keras.optimizers.Adam(config.lr, beta_1=config.beta_1),
                                                config.precision)
                for key in ("gen_pv2lu", "gen_lu2pv", "disc_lu", "disc_pv")
            }
            for key, opt in self.optimizers.items():
                opt.build(getattr(self.nets, key).trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
            self.ema = self._ema_copy() if config.ema_decay else None
        self.trackables = {
            "train_step": self.step, "best_epoch": self.best_epoch,
            **{k: getattr(self.nets, k) for k in self.optimizers},
            **{f"opt_{k}": v for k, v in self.optimizers.items()},
            **({"ema": self.ema} if self.ema is not None else {}),
        }
        self.state: skeleton.Resumable | None = None
        self._train_step = tf.function(self._distributed_step)
        # the frozen cloud U-Net as its folded inference graph (batch normalisation folded into the convolutions:
        # training 5-8 % faster); its weights are read here, once
        self.frozen_cloud = folded_graph(self.nets.cloud, self.nets.cloud.compute_dtype)

    def _ema_copy(self) -> keras.Model:
        """A copy of the PV -> LU generator that will hold the exponential moving average of its weights."""
        copy = keras.models.clone_model(self.nets.gen_pv2lu)
        copy.set_weights(self.nets.gen_pv2lu.get_weights())
        return copy

    @property
    def selected_generator(self) -> keras.Model:
        """The PV -> LU generator that is validated and kept: the moving average when ``ema_decay`` is set."""
        return self.ema if self.ema is not None else self.nets.gen_pv2lu

    # ---- one step
    def compute_losses(self, pv: tf.Tensor, lu: tf.Tensor) -> dict[str, tf.Tensor]:
        """All SPEC §5 loss terms and the four network totals for one (augmented) batch."""
        c, n = self.config, self.nets
        f32 = runtime.float32  # the networks may compute in bfloat16/float16; the losses do not
        fake_lu = f32(n.gen_pv2lu(pv, training=True))
        fake_pv = f32(n.gen_lu2pv(lu, training=True))
        cyc_pv = f32(n.gen_lu2pv(fake_lu, training=True))
        cyc_lu = f32(n.gen_pv2lu(fake_pv, training=True))

        r1 = c.gradient_penalty_mode == "meschederreal"
        real_lu_logits, fake_lu_logits, gp_lu = discriminate(n.disc_lu, lu, fake_lu, r1)
        real_pv_logits, fake_pv_logits, gp_pv = discriminate(n.disc_pv, pv, fake_pv, r1)

        out = {
            "gan_G": generator_gan_loss(fake_lu_logits),
            "gan_F": generator_gan_loss(fake_pv_logits),
            "identity_G": l1_loss(pv, fake_lu),
            "identity_F": l1_loss(lu, fake_pv),
            "cycle": l1_loss(pv, cyc_pv) + l1_loss(lu, cyc_lu),
            "gp_D_LU": gp_lu,
            "gp_D_PV": gp_pv,
        }
        if c.segmentation_consistency_lmbda:
            cloud = self.frozen_cloud
            out["segmentation_G"] = binary_kl(tf.stop_gradient(f32(cloud(pv))), f32(cloud(fake_lu)))
            out["segmentation_F"] = binary_kl(tf.stop_gradient(f32(cloud(lu))), f32(cloud(fake_pv)))
        else:
            out["segmentation_G"] = out["segmentation_F"] = tf.constant(0.0)
        out["loss_G"] = (out["gan_G"] + c.identity_lambda * out["identity_G"] + c.cycled_lambda * out["cycle"]
                         + c.segmentation_consistency_lmbda * out["segmentation_G"])
        out["loss_F"] = (out["gan_F"] + c.identity_lambda * out["identity_F"] + c.cycled_lambda * out["cycle"]
                         + c.segmentation_consistency_lmbda * out["segmentation_F"])
        out["loss_D_LU"] = discriminator_gan_loss(real_lu_logits, fake_lu_logits) + c.gradient_penalty_weight * gp_lu
        out["loss_D_PV"] = discriminator_gan_loss(real_pv_logits, fake_pv_logits) + c.gradient_penalty_weight * gp_pv
        return out

    def _replica_step(self, pv: tf.Tensor, lu: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group, tf.int64)
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), step * 1024 + replica])
        k = tf.random.stateless_uniform(tf.shape(pv)[:1], seed, minval=0, maxval=8, dtype=tf.int32)
        both = d4_transform(tf.concat([pv, lu], axis=-1), k)
        pv, lu = both[..., :4], both[..., 4:]
        scale = 1.0 / ctx.num_replicas_in_sync
        targets = {"gen_pv2lu": "loss_G", "gen_lu2pv": "loss_F", "disc_lu": "loss_D_LU", "disc_pv": "loss_D_PV"}
        with tf.GradientTape(persistent=True) as tape:
            losses = self.compute_losses(pv, lu)
            scaled = {key: self.optimizers[key].scale_loss(losses[name] * scale) for key, name in targets.items()}
        for key in targets:
            variables = getattr(self.nets, key).trainable_variables
            grads = tape.gradient(scaled[key], variables)
            self.optimizers[key].apply_gradients(zip(grads, variables))
        del tape
        return losses

    def _distributed_step(self, pv: tf.Tensor, lu: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = self.strategy.run(self._replica_step, args=(pv, lu, step))
        if self.ema is not None:
            # the decay warms up as in tf.train.ExponentialMovingAverage(num_updates=step)
            step_f = tf.cast(step, tf.float32)
            decay = tf.minimum(self.config.ema_decay, (1.0 + step_f) / (10.0 + step_f))
            for average, weight in zip(self.ema.trainable_weights, self.nets.gen_pv2lu.trainable_weights):
                average.assign(decay * average + (1.0 - decay) * weight)
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    def train_step(self, pv, lu) -> dict[str, float]:
        """One optimisation step of all four networks on a (global) batch; returns the mean losses."""
        losses = self._train_step(pv, lu, tf.constant(int(self.step.numpy()), tf.int64))
        self.step.assign_add(1)
        return losses

    # ---- epochs
    def _dataset(self, pv: np.ndarray, lu: np.ndarray, epoch: int):
        batches = epoch_batches(len(pv), self.config.batch_size, self.config.seed, epoch)
        if self.config.steps_per_epoch:
            batches = batches[: self.config.steps_per_epoch]
        shape = (self.config.batch_size,) + pv.shape[1:]

        def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for idx in batches:
                yield pv[idx], lu[idx]

        ds = tf.data.Dataset.from_generator(gen, output_signature=(
            tf.TensorSpec(shape, tf.float32), tf.TensorSpec(shape, tf.float32))).prefetch(2)
        return self.strategy.experimental_distribute_dataset(ds), len(batches)

    def train_epoch(self, train: PatchPairs, epoch: int, writer: summaries.Writer) -> dict[str, float]:
        """One epoch at the schedule's learning rate; returns the history row (mean losses)."""
        lr = self.config.learning_rate(epoch)
        for opt in self.optimizers.values():
            opt.learning_rate = lr
        dist_ds, steps = self._dataset(train.pv, train.lu, epoch)
        sums = {k: 0.0 for k in LOSS_NAMES}
        bar = tqdm(dist_ds, total=steps, desc=f"{self.config.name} epoch {epoch + 1}/{self.config.epochs}",
                   leave=False, disable=None)
        for pv_b, lu_b in bar:
            losses = {k: float(v) for k, v in self.train_step(pv_b, lu_b).items()}
            for k in LOSS_NAMES:
                sums[k] += losses[k]
            step = int(self.step.numpy())
            if step % self.config.summary_every == 0:
                writer.scalars({f"step/{k}": v for k, v in losses.items()}, step)
            bar.set_postfix(G=f"{losses['loss_G']:.3f}", D=f"{losses['loss_D_LU']:.3f}")
        return {"epoch": epoch, "lr": lr, **{k: sums[k] / max(steps, 1) for k in LOSS_NAMES}}

    def fit(self, train: PatchPairs, val: PatchPairs | None, folder: str | os.PathLike, record: dict | None = None,
            overwrite: bool = False) -> list[dict[str, float]]:
        """Train until ``config.epochs`` epochs are done, resuming from the last checkpoint in ``folder``.

        After every epoch the selected generator is written to the run's epochs folder and scored on ``val``
        (:func:`pvl8da.evaluation.selection.cloud_agreement`); the best epoch so far is remembered in the
        checkpoint. Without ``val`` the last epoch is the selected one. A run resumes only with the
        hyper-parameters it started with (``epochs`` may grow); ``overwrite`` starts it again instead.
        ``record``: provenance kept in the run's config file. Returns the per-epoch history of the whole run.
        """
        paths = output_paths(folder, self.config)
        if len(train) < self.config.batch_size:
            raise InputError(f"{len(train)} training patches is fewer than one batch of {self.config.batch_size}")
        Path(folder).mkdir(parents=True, exist_ok=True)
        if overwrite:
            discard_run(folder, self.config)
        else:
            check_resumable(folder, self.config)
        paths["epochs"].mkdir(exist_ok=True)
        self.state = state = skeleton.Resumable(paths["checkpoints"], worst=-1.0, **self.trackables)
        history = [row for row in read_history(paths["history"]) if row["epoch"] < int(state.step)]
        save_json_atomic({**asdict(self.config), **({"provenance": record} if record else {})}, paths["config"])
        writer = summaries.Writer(paths["logs"])
        if val is not None and int(state.step) == 0:
            raw = cloud_agreement(self.nets.cloud, None, val.pv, val.lu)
            writer.scalars({"val/agreement": raw}, 0)
            log.info("%s: validation agreement without adaptation %.4f", self.config.name, raw)
        for epoch in range(int(state.step), self.config.epochs):
            row = self.train_epoch(train, epoch, writer)
            row["val_agreement"] = self.end_epoch(train, val, epoch, state, paths["epochs"], writer)
            writer.scalars({f"epoch/{k}": row[k] for k in LOSS_NAMES}, epoch + 1)
            writer.flush()
            history.append(row)
            log.info("%s epoch %d/%d: %s", self.config.name, epoch + 1, self.config.epochs,
                     ", ".join(f"{k}={row[k]:.4f}" for k in (*LOSS_NAMES[:4], "val_agreement")))
            _write_history(paths["history"], history)
            state.step.assign(epoch + 1)
            state.save(epoch + 1)
        writer.close()
        return history

    def end_epoch(self, train: PatchPairs, val: PatchPairs | None, epoch: int, state: skeleton.Resumable,
                  epochs_dir: Path, writer: summaries.Writer) -> float:
        """Precise BN statistics, the epoch's generator file, its validation agreement (nan without ``val``)
        and the best epoch so far; summaries."""
        self.recalibrate(train, epoch)
        save_weights_atomic(self.selected_generator, epoch_weights(epochs_dir, epoch + 1))
        score = float("nan") if val is None else cloud_agreement(self.nets.cloud, self.selected_generator,
                                                                 val.pv, val.lu)
        if val is None or score > float(state.best):
            state.best.assign(-1.0 if val is None else score)
            self.best_epoch.assign(epoch + 1)
        sample = train.subset(np.arange(min(4, len(train))))
        writer.scalars({"val/agreement": score, "val/best_epoch": int(self.best_epoch.numpy())}, epoch + 1)
        writer.images(self._sample_images(sample.pv, sample.lu), epoch + 1)
        return score

    def recalibrate(self, train: PatchPairs, epoch: int, n: int = 64) -> None:
        """Precise BatchNorm statistics of the generators on a seeded sample of ``n`` training patches."""
        idx = np.sort(np.random.default_rng([self.config.seed, epoch, 7]).permutation(len(train))[:n])
        recalibrate_batchnorm(self.nets.gen_pv2lu, train.pv[idx])
        recalibrate_batchnorm(self.nets.gen_lu2pv, train.lu[idx])
        if self.ema is not None:
            recalibrate_batchnorm(self.ema, train.pv[idx])

    def _sample_images(self, pv: np.ndarray, lu: np.ndarray) -> dict[str, tf.Tensor]:
        """False-colour TensorBoard images of both domains and their translations."""
        fake_lu = self.selected_generator(pv, training=False)
        fake_pv = self.nets.gen_lu2pv(lu, training=False)
        return {f"images/{name}": false_colour(img)
                for name, img in (("PV", pv), ("G(PV)", fake_lu), ("LU", lu), ("F(LU)", fake_pv))}

    def save_final(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write the last epoch's LU -> PV generator and discriminators, ``<stem>_done.json`` (the selected epoch
        and its validation agreement), then the selected epoch's PV -> LU generator (last: it marks the run complete)."""
        paths = output_paths(folder, self.config)
        save_weights_atomic(self.nets.gen_lu2pv, paths["generator_l82pv"])
        save_weights_atomic(self.nets.disc_lu, paths["discriminator_l8"])
        save_weights_atomic(self.nets.disc_pv, paths["discriminator_pv"])
        best = epoch_weights(paths["epochs"], int(self.best_epoch.numpy()))
        best_score = float(self.state.best) if self.state is not None and float(self.state.best) >= 0 else None
        save_json_atomic({"selected_epoch": int(self.best_epoch.numpy()), "epochs": self.config.epochs,
                          "val_agreement": best_score}, paths["done"])
        with atomic_path(paths["generator"]) as tmp:
            shutil.copyfile(best, tmp)
        log.info("%s: epoch %d selected (%s)", self.config.name, int(self.best_epoch.numpy()), paths["generator"])
        return paths


def epoch_weights(epochs_dir: str | os.PathLike, epoch: int) -> Path:
    """The PV -> LU generator file of (1-based) ``epoch`` in a run's epochs folder."""
    return Path(epochs_dir) / f"epoch_{epoch:03d}.weights.h5"


def false_colour(x) -> tf.Tensor:
    """SWIR/NIR/RED composite of 4-band reflectance, clipped to [0, 1], for image summaries."""
    x = tf.convert_to_tensor(x)
    return tf.clip_by_value(tf.gather(x, [3, 2, 1], axis=-1) / 0.6, 0.0, 1.0)


def check_resumable(folder: str | os.PathLike, config: CycleGANConfig) -> None:
    """Raise InputError when ``folder`` holds a run of this name begun with other hyper-parameters."""
    paths = output_paths(folder, config)
    if not paths["checkpoints"].is_dir() or not paths["config"].is_file():
        return
    recorded = load_json(paths["config"])
    current = asdict(config)
    found = [f"{key}: {recorded.get(key)} there, {value} now" for key, value in current.items()
             if key != "epochs" and recorded.get(key) != value]
    if found:
        raise InputError(f"{paths['checkpoints']}: a run begun with other hyper-parameters ({'; '.join(found)}); "
                         "it resumes only with its own (epochs may grow): give another suffix or folder, or "
                         "overwrite it (--overwrite)")


def discard_run(folder: str | os.PathLike, config: CycleGANConfig) -> None:
    """Remove every output of a run (weights, checkpoints, logs, history, config) so that it starts afresh."""
    for path in output_paths(folder, config).values():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def read_history(path: Path) -> list[dict]:
    """The rows of a run's history CSV (``epoch`` an int, every other column a float); none before the first epoch."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "lr", *LOSS_NAMES, "val_agreement"])
        writer.writeheader()
        writer.writerows(rows)


def train_cyclegan(dataset: str | os.PathLike, folder: str | os.PathLike, config: CycleGANConfig,
                   cloud_weights: str | os.PathLike | None,
                   networks_fn: Callable[[], Networks] | None = None, record: dict | None = None,
                   overwrite: bool = False) -> dict[str, Path]:
    """Train (or resume) a CycleGAN on a pseudo-simultaneous dataset, holding out ``config.val_scenes`` pairs
    for selecting the epoch; returns the output paths. ``record`` and ``overwrite`` as in :meth:`CycleGANTrainer.fit`.

    Inputs are checked (dataset, cloud weights, enough pairs and patches) before anything is written to ``folder``.
    """
    train, val = split_by_scene(load_pairs(dataset), config.val_scenes, config.seed)
    if networks_fn is None:
        check_cloud_weights(cloud_weights)
        def networks_fn() -> Networks:
            return build_networks(config, cloud_weights)
    if len(train) < config.batch_size:
        raise InputError(f"{dataset}: {len(train)} training patches is fewer than one batch of {config.batch_size}")
    keras.utils.set_random_seed(config.seed)
    trainer = CycleGANTrainer(config, networks_fn)
    trainer.fit(train, val, folder, record, overwrite)
    return trainer.save_final(folder)
