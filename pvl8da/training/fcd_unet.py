"""FCD+ (pseudo masks), FCD+ fine-tuning (a fraction of real masks, frozen encoder) and the fully
supervised U-Net: one training loop with validation F1, best weights and resumption."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from pvl8da.errors import InputError
from pvl8da import runtime
from pvl8da.training import fcd_losses as losses
from pvl8da.training import skeleton
from pvl8da.training.configs import UNetConfig
from pvl8da.evaluation.calibration import sample_threshold
from pvl8da.datasets.patch_data import PatchData
from pvl8da.storage.atomic import load_json
from pvl8da.evaluation.metrics import class_scores, confusion
from pvl8da.models.fcd import build_unet, set_encoder_trainable

log = logging.getLogger(__name__)

BEST, FINAL = skeleton.weight_names("model")


def load_unet(run_dir: str | Path, best: bool = True) -> keras.Model:
    """The U-Net of a training folder (best validation weights by default)."""
    run_dir = Path(run_dir)
    cfg = load_json(run_dir / skeleton.CONFIG)
    model = build_unet(cfg["width"], cfg["blocks"])
    model.load_weights(run_dir / (BEST if best and (run_dir / BEST).is_file() else FINAL))
    return model


def calibrated_threshold(run_dir: str | Path) -> float | None:
    """The sample-calibrated probability threshold of a finished run, None when it was not calibrated."""
    value = load_json(Path(run_dir) / skeleton.DONE).get("threshold")
    return None if value is None else float(value)


def cloud_probability(model: keras.Model, x: np.ndarray | tf.Tensor) -> np.ndarray:
    """Pixel cloud probability (B, H, W) of the U-Net."""
    seg, _ = model(tf.convert_to_tensor(x, tf.float32), training=False)
    return tf.sigmoid(runtime.float32(seg[..., 0])).numpy()


def kept_patches(n: int, keep_ratio: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random ``keep_ratio`` share of ``n`` patches (at least one)."""
    if not 0 < keep_ratio <= 1:
        raise InputError(f"keep_ratio must lie in (0, 1], not {keep_ratio}")
    k = max(1, int(round(n * keep_ratio)))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def validation_f1(model: keras.Model, val: PatchData, limit: int, batch_size: int = 32) -> float:
    """Cloud F1 at probability 0.5 over valid pixels of the first ``limit`` validation patches."""
    total = confusion(np.zeros(0, bool), np.zeros(0, bool))
    for b in val.iter_batches(batch_size, limit):
        p = cloud_probability(model, b["x"])
        total = total + confusion(p >= 0.5, b["cloud"][..., 0] > 0, b["valid"][..., 0] > 0)
    return class_scores(total)["f1_cloud"]


def _train_step_fn(model: keras.Model, opt: keras.optimizers.Optimizer, cls_weight: float):
    @tf.function
    def step(x, cloud, valid, label):
        with tf.GradientTape() as tape:
            seg, cls = model(x, training=True)
            pix = losses.masked_pixel_bce(seg, cloud, valid)
            img = losses.classification_loss(cls, label)
            total = pix + cls_weight * img
        variables = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(opt.scale_loss(total), variables), variables))
        return {"pixel_bce": pix, "cls_bce": img, "total": total}
    return step


def _calibrate(model: keras.Model, train_h5: str | Path, best_path: Path, cfg: UNetConfig) -> dict:
    """The probability threshold of the best weights picked by F1 on a seeded labelled training sample."""
    model.load_weights(best_path)
    labelled = PatchData(train_h5)
    try:
        threshold, f1 = sample_threshold(lambda x: cloud_probability(model, x), labelled,
                                         cfg.calibration_patches, cfg.calibration_seed)
    finally:
        labelled.close()
    log.info("calibrated threshold %.4f (F1 %.4f on %d labelled training patches)", threshold, f1,
             cfg.calibration_patches)
    return {"threshold": threshold, "threshold_sample_f1": f1}


def _model(cfg: UNetConfig) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """The seeded U-Net (initial weights loaded, encoder frozen as configured) and its built optimiser."""
    keras.utils.set_random_seed(cfg.seed)
    with runtime.dtype_policy(cfg.precision):
        model = build_unet(cfg.width, cfg.blocks)
    if cfg.init_weights:
        model.load_weights(cfg.init_weights)
    set_encoder_trainable(model, not cfg.freeze_encoder)
    opt = runtime.training_optimizer(keras.optimizers.Adam(cfg.lr), cfg.precision)
    opt.build(model.trainable_variables)
    return model, opt


def train_unet(train_h5: str | Path, val_h5: str | Path, out_dir: str | Path, cfg: UNetConfig,
               targets_h5: str | Path | None = None, progress: bool = True) -> dict:
    """Train (or resume) a U-Net in ``out_dir`` on the real masks of ``train_h5`` or on the ``cloud``
    pseudo masks of ``targets_h5``; writes best/final weights, ``config.json`` and ``done.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = None
    if targets_h5 is not None:
        with h5py.File(targets_h5, "r") as f:
            targets = f["cloud"][:]
    by_pixel = cfg.keep == "pixels" and cfg.keep_ratio < 1
    train = PatchData(train_h5, targets, pixel_keep=(cfg.keep_ratio, cfg.seed) if by_pixel else None)
    val = PatchData(val_h5)
    keep = np.arange(len(train)) if by_pixel else kept_patches(len(train), cfg.keep_ratio, cfg.seed)
    log.info("training on %d of %d patches%s", len(keep), len(train),
             f", {100 * cfg.keep_ratio:g} % of each one's pixels labelled" if by_pixel else "")
    model, opt = _model(cfg)
    state = skeleton.Resumable(out_dir / skeleton.CHECKPOINTS, model=model, opt=opt)
    run = skeleton.Run(out_dir, asdict(cfg), state, model, "model",
                       skeleton.Cadence(cfg.iterations, cfg.log_every, cfg.val_every, cfg.checkpoint_every))
    train_step = _train_step_fn(model, opt, cfg.cls_weight)
    if run.start == 0 and cfg.init_weights and len(val):
        run.save_best(validation_f1(model, val, cfg.val_patches), 0)

    def step_fn(step: int) -> dict:
        rng = np.random.default_rng([cfg.seed, step])
        b = train.batch(keep[rng.integers(0, len(keep), cfg.batch_size)], rng if cfg.augment else None)
        terms = train_step(*(tf.constant(b[k]) for k in ("x", "cloud", "valid", "label")))
        return {f"loss/{k}": v for k, v in terms.items()}

    rate = run.loop(step_fn, (lambda done: validation_f1(model, val, cfg.val_patches)) if len(val) else None,
                    out_dir.name, progress, lambda s: {"loss": float(s["loss/total"])})
    run.save_final()
    train.close()
    val.close()
    summary = {"iterations": cfg.iterations, "best_val_f1": float(state.best), "patches": int(len(keep)),
               "resumed_at": run.start, "steps_per_second": rate}
    if cfg.calibration_patches > 0:
        summary.update(_calibrate(model, train_h5, run.best_path, cfg))
    return run.done(summary)
