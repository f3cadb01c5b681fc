"""TensorBoard scalars and images written with TensorFlow's core summary op (no tensorboard package needed)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str, data_class: int) -> summary_pb2.SummaryMetadata:
    meta = summary_pb2.SummaryMetadata(data_class=data_class)
    meta.plugin_data.plugin_name = plugin
    return meta


def scalar(name: str, value: float, step: int) -> None:
    """A scalar shown by TensorBoard's Scalars dashboard (default writer)."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR))


def images(name: str, batch: np.ndarray | tf.Tensor, step: int) -> None:
    """Images (B, H, W, 1 or 3) in [0, 1] shown by TensorBoard's Images dashboard (default writer)."""
    batch = np.clip(np.asarray(batch, np.float32), 0, 1)
    pngs = [tf.io.encode_png(tf.constant((im * 255).round().astype(np.uint8))) for im in batch]
    h, w = batch.shape[1:3]
    tensor = tf.stack([tf.constant(str(w)), tf.constant(str(h))] + pngs)
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE))


class Writer:
    """The one TensorBoard event writer of a training folder."""

    def __init__(self, folder: str | Path) -> None:
        self.writer = tf.summary.create_file_writer(str(folder))

    def scalars(self, values: Mapping[str, float | tf.Tensor], step: int) -> None:
        """Write each (name, value) as a scalar at ``step``."""
        with self.writer.as_default():
            for name, value in values.items():
                scalar(name, float(value), step)

    def images(self, batches: Mapping[str, np.ndarray | tf.Tensor], step: int) -> None:
        """Write each (name, images in [0, 1]) at ``step``."""
        with self.writer.as_default():
            for name, batch in batches.items():
                images(name, batch, step)

    def flush(self) -> None:
        """Write pending events to disk."""
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
