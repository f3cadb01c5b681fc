"""Train the cloud U-Net (SPEC §4) on Landsat-as-Proba-V products with their ``CM_RESAMPLED`` labels.

Labels are binarised at 0.5; pixels invalid in the bands or the labels get zero weight in the loss.
Patches are augmented with the dihedral group D4, the validation split is by scene (product), the
weights of the epoch with the lowest validation loss are kept, and per-epoch metrics go to a CSV.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pvl8da import runtime
from pvl8da.storage.atomic import atomic_path, load_json, save_json_atomic, save_weights_atomic
from pvl8da.training import skeleton
from pvl8da.training.configs import CloudTrainConfig
from pvl8da.training.augment import d4_transform
from pvl8da.training.cyclegan import recalibrate_batchnorm
from pvl8da.errors import InputError
from pvl8da.evaluation.metrics import confusion, scores
from pvl8da.sensors.probav import LandsatAsProbaVProduct

log = logging.getLogger(__name__)


@dataclass
class Patches:
    """Image patches (N, S, S, 4), binary labels (N, S, S) and loss weights (N, S, S; 0 where invalid)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray

    @staticmethod
    def concat(parts: list["Patches"]) -> "Patches":
        return Patches(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("x", "y", "w")))


def read_labelled(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TOA (H, W, 4; 0 where invalid), cloud labels binarised at 0.5 and validity of a Landsat-as-Proba-V product."""
    with LandsatAsProbaVProduct(path) as product:
        dn = product.read_dn_all()
        invalid = product.invalid_from(dn)
        if "CM_RESAMPLED" not in product.file:
            raise InputError(f"{path}: no CM_RESAMPLED labels (convert a biome or 38c scene)")
        soft = product.read_clouds()
        x = product.toa_from_dn(dn)
    valid = ~invalid & (soft >= 0)
    x[~valid] = 0.0
    return x, (soft >= 0.5) & valid, valid


def product_patches(path: str | os.PathLike, size: int = 64, stride: int = 32,
                    min_valid_fraction: float = 0.25) -> Patches:
    """Patches of one product on a stride grid (edges padded as invalid) holding enough valid pixels."""
    x, y, valid = read_labelled(path)
    height, width = valid.shape
    pad_h = size + math.ceil(max(height - size, 0) / stride) * stride - height
    pad_w = size + math.ceil(max(width - size, 0) / stride) * stride - width
    x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)))
    y = np.pad(y, ((0, pad_h), (0, pad_w)))
    valid = np.pad(valid, ((0, pad_h), (0, pad_w)))
    cut = [(slice(r, r + size), slice(c, c + size))
           for r in range(0, valid.shape[0] - size + 1, stride) for c in range(0, valid.shape[1] - size + 1, stride)]
    cut = [s for s in cut if valid[s].mean() >= min_valid_fraction]
    if not cut:
        return Patches(np.zeros((0, size, size, 4), np.float32), np.zeros((0, size, size), np.float32),
                       np.zeros((0, size, size), np.float32))
    return Patches(np.stack([x[s] for s in cut]).astype(np.float32), np.stack([y[s] for s in cut]).astype(np.float32),
                   np.stack([valid[s] for s in cut]).astype(np.float32))


def split_by_scene(products: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded split of whole products into training and validation (none for validation when only one)."""
    products = sorted(str(p) for p in products)
    order = np.random.default_rng(seed).permutation(len(products))
    n_val = 0 if len(products) < 2 else min(len(products) - 1, max(1, round(val_fraction * len(products))))
    val = [Path(products[i]) for i in sorted(order[:n_val])]
    train = [Path(products[i]) for i in sorted(order[n_val:])]
    return train, val


def _augment(x, y, w, seed):
    k = tf.random.stateless_uniform(tf.shape(x)[:1], seed, minval=0, maxval=8, dtype=tf.int32)
    both = d4_transform(tf.concat([x, y[..., None], w[..., None]], axis=-1), k)
    return both[..., :4], both[..., 4:5], both[..., 5]


def _dataset(p: Patches, batch_size: int, seed: int, augment: bool, skip: int = 0) -> tf.data.Dataset:
    """Batches of ``p``; augmented: an endless seeded stream of shuffled D4-augmented batches, the first
    ``skip`` left out (a resumed run continues the stream where its checkpoint left it)."""
    ds = tf.data.Dataset.from_tensor_slices((p.x, p.y, p.w))
    if augment:
        ds = ds.shuffle(len(p.x), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(batch_size, drop_remainder=True).skip(skip)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start=skip))).map(
            lambda b, i: _augment(*b, tf.stack([tf.constant(seed, tf.int64), i])))
    else:
        ds = ds.batch(batch_size).map(lambda x, y, w: (x, y[..., None], w))
    return ds.prefetch(2)


def evaluate(model: keras.Model, p: Patches, batch_size: int = 32) -> dict[str, float]:
    """Pixel scores (metrics.scores) of the model's prediction at 0.5 over the valid pixels of patches."""
    if len(p.x) == 0:
        return {}
    prob = model.predict(p.x, batch_size=batch_size, verbose=0)[..., 0]
    return scores(confusion(prob >= 0.5, p.y > 0.5, p.w > 0))


class ResumeCallback(keras.callbacks.Callback):
    """At each epoch's end: keep the weights of the lowest ``monitor`` so far in ``best_path``, then
    checkpoint the model, its optimiser, the epoch and that best (``skeleton.Resumable``) for resumption."""

    def __init__(self, state: skeleton.Resumable, monitor: str, best_path: Path) -> None:
        super().__init__()
        self.state, self.monitor, self.best_path = state, monitor, best_path

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        score = -float(logs[self.monitor])
        if score > float(self.state.best):
            self.state.best.assign(score)
            save_weights_atomic(self.model, self.best_path)
        self.state.step.assign(epoch + 1)
        self.state.save(epoch + 1)


def _history(path: Path, epochs: int | None = None) -> list[dict]:
    """Rows of the CSV history; with ``epochs``, the file is cut to its first ``epochs`` epochs."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if epochs is not None:
        rows = [r for r in rows if int(r["epoch"]) < epochs]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["epoch"])
            writer.writeheader()
            writer.writerows(rows)
    return rows


def _resumable(model: keras.Model, folder: Path, config: CloudTrainConfig) -> skeleton.Resumable:
    """The run's checkpoint, restored when a run with the same configuration (``epochs`` may grow) was
    interrupted; restarted afresh when the configuration differs."""
    record = folder / skeleton.CONFIG
    current = {k: v for k, v in asdict(config).items() if k != "epochs"}
    if record.is_file() and {k: v for k, v in load_json(record).items() if k != "epochs"} != current:
        log.warning("%s: checkpoints of a run with another configuration, starting afresh", folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_json_atomic(asdict(config), record)
    model.optimizer.build(model.trainable_variables)
    return skeleton.Resumable(folder, worst=-math.inf, model=model, optimizer=model.optimizer)


def _compiled_model(config: CloudTrainConfig, init_weights: str | os.PathLike | None) -> keras.Model:
    """The seeded cloud U-Net (initial weights loaded), compiled with the configured learning rate and BN momentum."""
    from pvl8da.models import da as models

    keras.utils.set_random_seed(config.seed)
    with runtime.dtype_policy(config.precision):  # compile() adds loss scaling for float16
        model = models.build_cloud_unet()
    if init_weights:
        models.load_weights_checked(model, init_weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.bn_momentum
    model.compile(optimizer=keras.optimizers.Adam(config.lr), loss="binary_crossentropy",
                  weighted_metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    return model


def _fit(model: keras.Model, train: Patches, val: Patches | None, config: CloudTrainConfig, folder: Path,
         stem: str) -> tuple[list[dict], str]:
    """Fit (resuming an interrupted run from its last epoch), leave the best epoch's weights in the model and
    remove the run's checkpoints; returns the whole CSV history and the monitored quantity."""
    history_path = folder / f"{stem}_history.csv"
    checkpoints = folder / f"{stem}_{skeleton.CHECKPOINTS}"
    best_path = checkpoints / "best.weights.h5"
    monitor = "val_loss" if val is not None and len(val.x) else "loss"
    steps = config.steps_per_epoch or max(1, math.ceil(len(train.x) / config.batch_size))
    state = _resumable(model, checkpoints, config)
    start = int(state.step)
    _history(history_path, start)
    callbacks = [ResumeCallback(state, monitor, best_path),
                 keras.callbacks.CSVLogger(str(history_path), append=start > 0)]
    model.fit(_dataset(train, config.batch_size, config.seed, augment=True, skip=start * steps),
              epochs=config.epochs, initial_epoch=start, steps_per_epoch=steps, callbacks=callbacks, verbose=0,
              shuffle=False,
              validation_data=_dataset(val, config.batch_size, config.seed, False) if monitor == "val_loss" else None)
    model.load_weights(best_path)
    shutil.rmtree(checkpoints)
    return _history(history_path), monitor


def train_cloud_detector(products: list[str | os.PathLike], out_weights: str | os.PathLike,
                         config: CloudTrainConfig = CloudTrainConfig(),
                         init_weights: str | os.PathLike | None = None) -> dict:
    """Train the cloud U-Net; writes ``out_weights`` (best epoch), ``<stem>_history.csv`` and ``<stem>_metrics.json``.

    A killed run resumes from the end of its last finished epoch (``<stem>_checkpoints``, which also holds the
    best epoch's weights until the run is done).
    Returns the metrics summary (best epoch, validation scores, scenes used).
    """
    out_weights = Path(out_weights)
    if not out_weights.name.endswith(".weights.h5"):
        raise InputError(f"{out_weights}: the output must be a .weights.h5 file")
    if not products:
        raise InputError("no Landsat-as-Proba-V product given to train the cloud detector")
    train_paths, val_paths = split_by_scene(products, config.val_fraction, config.seed)
    args = (config.patch_size, config.stride, config.min_valid_fraction)
    train = Patches.concat([product_patches(p, *args) for p in train_paths])
    val = Patches.concat([product_patches(p, *args) for p in val_paths]) if val_paths else None
    if len(train.x) == 0:
        raise InputError(f"no training patch with ≥ {config.min_valid_fraction:.0%} valid pixels in "
                         f"{', '.join(map(str, train_paths))}")
    log.info("cloud U-Net: %d training patches from %d scenes, %d validation patches from %d scenes",
             len(train.x), len(train_paths), 0 if val is None else len(val.x), len(val_paths))
    model = _compiled_model(config, init_weights)
    stem = out_weights.name[: -len(".weights.h5")]
    folder = out_weights.parent
    folder.mkdir(parents=True, exist_ok=True)
    rows, monitor = _fit(model, train, val, config, folder, stem)
    sample = np.random.default_rng(config.seed).permutation(len(train.x))[:64]
    recalibrate_batchnorm(model, train.x[np.sort(sample)])
    losses = [float(r[monitor]) for r in rows]
    summary = {
        "best_epoch": int(np.argmin(losses)) + 1, "monitor": monitor, "best_loss": float(np.min(losses)),
        "train_scenes": [str(p) for p in train_paths], "val_scenes": [str(p) for p in val_paths],
        "train_patches": len(train.x), "val_patches": 0 if val is None else len(val.x),
        "val_scores": evaluate(model, val) if val is not None else {},
        "config": asdict(config),
    }
    with atomic_path(folder / f"{stem}_metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    save_weights_atomic(model, out_weights)
    log.info("cloud U-Net: best epoch %d (%s %.4f), wrote %s", summary["best_epoch"], monitor,
             summary["best_loss"], out_weights)
    return summary
