"""The training skeleton the step-based trainers share: resume after a kill, best-by-validation weights,
validation/checkpoint/log cadence, TensorBoard, a progress bar and ``done.json``."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from pvl8da.storage.atomic import save_json_atomic, save_weights_atomic
from pvl8da.training.summaries import Writer

log = logging.getLogger(__name__)

DONE = "done.json"
CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"


def weight_names(prefix: str) -> tuple[str, str]:
    """The best-validation and final weight file names of a model called ``prefix``."""
    return f"{prefix}_best.weights.h5", f"{prefix}_final.weights.h5"


@dataclass(frozen=True)
class Cadence:
    """How often a run of ``iterations`` steps logs, validates and checkpoints (always at the last step)."""

    iterations: int
    log_every: int
    val_every: int
    checkpoint_every: int

    def due(self, every: int, done: int) -> bool:
        """Whether something done every ``every`` steps is due after ``done`` steps."""
        return done % every == 0 or done == self.iterations


class Resumable:
    """A ``tf.train.Checkpoint`` of the step, the best validation score (higher is better; ``worst`` before
    any) and ``trackables``, restored from the latest checkpoint in ``folder`` when there is one."""

    def __init__(self, folder: str | Path, max_to_keep: int = 2, worst: float = -1.0, **trackables) -> None:
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(worst, dtype=tf.float64, trainable=False)
        checkpoint = tf.train.Checkpoint(step=self.step, best_f1=self.best, **trackables)
        self.manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=max_to_keep)
        if self.manager.latest_checkpoint:
            checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", self.manager.latest_checkpoint, int(self.step))

    def save(self, number: int) -> None:
        """Write checkpoint ``number`` (the oldest beyond ``max_to_keep`` are removed)."""
        self.manager.save(checkpoint_number=number)


class Run:
    """One training folder: its config, checkpoint, best/final weights of ``model``, TensorBoard and done.json."""

    def __init__(self, out_dir: str | Path, config: dict, state: Resumable, model: keras.Model, prefix: str,
                 cadence: Cadence) -> None:
        self.out_dir, self.state, self.model, self.cadence = Path(out_dir), state, model, cadence
        self.best_path, self.final_path = (self.out_dir / name for name in weight_names(prefix))
        save_json_atomic(config, self.out_dir / CONFIG)
        self.writer = Writer(self.out_dir / TENSORBOARD)
        self.start = int(state.step)

    def save_best(self, score: float, done: int) -> None:
        """Record ``score`` as the best so far and write the model's weights as the best ones."""
        self.state.best.assign(score)
        save_weights_atomic(self.model, self.best_path)
        log.info("step %d: validation F1 %.4f (best)", done, score)

    def _after_step(self, done: int, scalars: Mapping, validate: Callable[[int], float] | None) -> bool:
        """Log, validate and checkpoint as due after ``done`` steps; True when the scalars were logged."""
        logged = self.cadence.due(self.cadence.log_every, done)
        if logged:
            self.writer.scalars(scalars, done)
        if validate is not None and self.cadence.due(self.cadence.val_every, done):
            score = validate(done)
            self.writer.scalars({"val/f1": score}, done)
            if score > float(self.state.best):
                self.save_best(score, done)
        if self.cadence.due(self.cadence.checkpoint_every, done):
            self.state.save(done)
        return logged

    def loop(self, step_fn: Callable[[int], Mapping], validate: Callable[[int], float] | None, desc: str,
             progress: bool, postfix: Callable[[Mapping], dict]) -> float:
        """Run ``step_fn(step)`` (returning the scalars to log) from the resumed step to the last one;
        ``validate(done)`` (None: no validation data) returns the score kept best. Returns steps per second."""
        t0 = time.perf_counter()
        bar = tqdm(total=self.cadence.iterations, initial=self.start, disable=not progress, desc=desc, unit="it")
        for step in range(self.start, self.cadence.iterations):
            scalars = step_fn(step)
            self.state.step.assign(step + 1)
            bar.update(1)
            if self._after_step(step + 1, scalars, validate):
                bar.set_postfix(postfix(scalars))
        bar.close()
        self.writer.close()
        return (self.cadence.iterations - self.start) / max(time.perf_counter() - t0, 1e-9)

    def save_final(self) -> None:
        """Write the final weights, and the best ones when validation never ran."""
        save_weights_atomic(self.model, self.final_path)
        if not self.best_path.is_file():
            save_weights_atomic(self.model, self.best_path)

    def done(self, summary: dict) -> dict:
        """Write ``done.json`` (atomically: it marks the run complete) and return ``summary``."""
        save_json_atomic(summary, self.out_dir / DONE)
        return summary
