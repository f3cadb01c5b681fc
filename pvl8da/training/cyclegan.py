"""CycleGAN domain adaptation Proba-V (PV) <-> Landsat-8 upscaled to Proba-V (LU), SPEC §5.

G: PV -> LU and F: LU -> PV generators, PatchGAN discriminators D_LU and D_PV (logits), and a frozen
cloud U-Net for the segmentation-consistency term. Training is a ``tf.function`` step run through a
``tf.distribute`` strategy (all visible GPUs, or the default strategy on CPU), checkpointed every
epoch and resumed from the last checkpoint.
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

from pvl8da.storage.atomic import atomic_path, load_json, save_json_atomic, save_weights_atomic
from pvl8da.training import summaries
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
        logits = discriminator(both, training=True)
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
def load_pairs(dataset: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The ``PV`` and ``LU`` patch arrays (N, H, W, 4) float32 of a pseudo-simultaneous dataset file."""
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
    except OSError as e:
        raise InputError(f"{dataset}: not a readable HDF5 file ({e})") from e
    if pv.shape != lu.shape or pv.ndim != 4 or pv.shape[-1] != 4 or pv.shape[1] != pv.shape[2]:
        raise InputError(f"{dataset}: PV {pv.shape} and LU {lu.shape} must both be (N, S, S, 4)")
    if pv.shape[0] == 0:
        raise InputError(f"{dataset}: the dataset holds no patch")
    return pv, lu


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
    """One training run: networks, optimisers, the distributed train step, checkpoints and summaries."""

    def __init__(self, config: CycleGANConfig, networks_fn: Callable[[], Networks],
                 strategy: tf.distribute.Strategy | None = None) -> None:
        self.config = config
        self.strategy = strategy or select_strategy()
        with self.strategy.scope():
            self.nets = networks_fn()
            self.nets.cloud.trainable = False
            self.optimizers = {
                key: keras.optimizers.Adam(config.lr, beta_1=config.beta_1)
                for key in ("gen_pv2lu", "gen_lu2pv", "disc_lu", "disc_pv")
            }
            for key, opt in self.optimizers.items():
                opt.build(getattr(self.nets, key).trainable_variables)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            epoch=self.epoch, step=self.step,
            **{k: getattr(self.nets, k) for k in self.optimizers},
            **{f"opt_{k}": v for k, v in self.optimizers.items()},
        )
        self._train_step = tf.function(self._distributed_step)

    # ---- one step
    def compute_losses(self, pv: tf.Tensor, lu: tf.Tensor) -> dict[str, tf.Tensor]:
        """All SPEC §5 loss terms and the four network totals for one (augmented) batch."""
        c, n = self.config, self.nets
        fake_lu = n.gen_pv2lu(pv, training=True)
        fake_pv = n.gen_lu2pv(lu, training=True)
        cyc_pv = n.gen_lu2pv(fake_lu, training=True)
        cyc_lu = n.gen_pv2lu(fake_pv, training=True)

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
            out["segmentation_G"] = binary_kl(tf.stop_gradient(n.cloud(pv, training=False)), n.cloud(fake_lu, training=False))
            out["segmentation_F"] = binary_kl(tf.stop_gradient(n.cloud(lu, training=False)), n.cloud(fake_pv, training=False))
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
            scaled = {key: losses[name] * scale for key, name in targets.items()}
        for key in targets:
            variables = getattr(self.nets, key).trainable_variables
            grads = tape.gradient(scaled[key], variables)
            self.optimizers[key].apply_gradients(zip(grads, variables))
        del tape
        return losses

    def _distributed_step(self, pv: tf.Tensor, lu: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = self.strategy.run(self._replica_step, args=(pv, lu, step))
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

    def fit(self, pv: np.ndarray, lu: np.ndarray, folder: str | os.PathLike, record: dict | None = None,
            overwrite: bool = False) -> list[dict[str, float]]:
        """Train until ``config.epochs`` epochs are done, resuming from the last checkpoint in ``folder``.

        A run resumes only with the hyper-parameters it started with (``epochs`` may grow); ``overwrite``
        starts it again instead. ``record``: provenance kept in the run's config file.
        Returns the per-epoch history (mean losses) of the whole run, resumed epochs included.
        """
        paths = output_paths(folder, self.config)
        Path(folder).mkdir(parents=True, exist_ok=True)
        if len(pv) < self.config.batch_size:
            raise InputError(f"{len(pv)} patches is fewer than one batch of {self.config.batch_size}")
        if overwrite:
            discard_run(folder, self.config)
        else:
            check_resumable(folder, self.config)
        manager = tf.train.CheckpointManager(self.checkpoint, str(paths["checkpoints"]), max_to_keep=2)
        if manager.latest_checkpoint:
            self.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("resuming %s from %s (epoch %d)", self.config.name, manager.latest_checkpoint, int(self.epoch.numpy()))
        history = [row for row in _read_history(paths["history"]) if row["epoch"] < int(self.epoch.numpy())]
        save_json_atomic({**asdict(self.config), **({"provenance": record} if record else {})}, paths["config"])
        writer = summaries.Writer(paths["logs"])
        sample = (pv[: min(4, len(pv))], lu[: min(4, len(lu))])
        for epoch in range(int(self.epoch.numpy()), self.config.epochs):
            dist_ds, steps = self._dataset(pv, lu, epoch)
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
            row = {"epoch": epoch, **{k: sums[k] / max(steps, 1) for k in LOSS_NAMES}}
            writer.scalars({f"epoch/{k}": row[k] for k in LOSS_NAMES}, epoch + 1)
            self.recalibrate(pv, lu, epoch)
            writer.images(self._sample_images(*sample), epoch + 1)
            writer.flush()
            history.append(row)
            log.info("%s epoch %d/%d: %s", self.config.name, epoch + 1, self.config.epochs,
                     ", ".join(f"{k}={row[k]:.4f}" for k in LOSS_NAMES[:4]))
            _write_history(paths["history"], history)
            self.epoch.assign(epoch + 1)
            manager.save(checkpoint_number=epoch + 1)
        writer.close()
        return history

    def recalibrate(self, pv: np.ndarray, lu: np.ndarray, epoch: int, n: int = 64) -> None:
        """Precise BatchNorm statistics of both generators on a seeded sample of ``n`` training patches."""
        idx = np.sort(np.random.default_rng([self.config.seed, epoch, 7]).permutation(len(pv))[:n])
        recalibrate_batchnorm(self.nets.gen_pv2lu, pv[idx])
        recalibrate_batchnorm(self.nets.gen_lu2pv, lu[idx])

    def _sample_images(self, pv: np.ndarray, lu: np.ndarray) -> dict[str, tf.Tensor]:
        """False-colour TensorBoard images of both domains and their translations."""
        fake_lu = self.nets.gen_pv2lu(pv, training=False)
        fake_pv = self.nets.gen_lu2pv(lu, training=False)
        return {f"images/{name}": false_colour(img)
                for name, img in (("PV", pv), ("G(PV)", fake_lu), ("LU", lu), ("F(LU)", fake_pv))}

    def save_final(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write the four networks' weights (the PV -> LU generator last: it marks the run complete)."""
        paths = output_paths(folder, self.config)
        save_weights_atomic(self.nets.gen_lu2pv, paths["generator_l82pv"])
        save_weights_atomic(self.nets.disc_lu, paths["discriminator_l8"])
        save_weights_atomic(self.nets.disc_pv, paths["discriminator_pv"])
        save_weights_atomic(self.nets.gen_pv2lu, paths["generator"])
        return paths


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


def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *LOSS_NAMES])
        writer.writeheader()
        writer.writerows(rows)


def train_cyclegan(dataset: str | os.PathLike, folder: str | os.PathLike, config: CycleGANConfig,
                   cloud_weights: str | os.PathLike | None,
                   networks_fn: Callable[[], Networks] | None = None, record: dict | None = None,
                   overwrite: bool = False) -> dict[str, Path]:
    """Train (or resume) a CycleGAN on a pseudo-simultaneous dataset; returns the output paths.
    ``record`` and ``overwrite`` as in :meth:`CycleGANTrainer.fit`.

    Inputs are checked (dataset, cloud weights) before anything is written to ``folder``.
    """
    pv, lu = load_pairs(dataset)
    if networks_fn is None:
        check_cloud_weights(cloud_weights)
        def networks_fn() -> Networks:
            return build_networks(config, cloud_weights)
    if len(pv) < config.batch_size:
        raise InputError(f"{dataset}: {len(pv)} patches is fewer than one batch of {config.batch_size}")
    keras.utils.set_random_seed(config.seed)
    trainer = CycleGANTrainer(config, networks_fn)
    trainer.fit(pv, lu, folder, record, overwrite)
    return trainer.save_final(folder)
