"""TensorBoard scalars and images written with TensorFlow's core summary op (no tensorboard package needed)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    return meta


def scalar(name: str, value: float, step: int) -> None:
    """A scalar shown by TensorBoard's Scalars dashboard (default writer)."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=_metadata("scalars"))


def images(name: str, batch: np.ndarray, step: int) -> None:
    """Images (B, H, W, 1 or 3) in [0, 1] shown by TensorBoard's Images dashboard (default writer)."""
    batch = np.clip(np.asarray(batch, np.float32), 0, 1)
    pngs = [tf.io.encode_png(tf.constant((im * 255).round().astype(np.uint8))) for im in batch]
    h, w = batch.shape[1:3]
    tensor = tf.stack([tf.constant(str(w)), tf.constant(str(h))] + pngs)
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))
