"""The dihedral group D4 (flips and quarter turns of square images) for every trainer's augmentation.

Element ``j`` (0..7) is ``j % 4`` counter-clockwise quarter turns (``np.rot90``), mirrored left-right when
``j >= 4``. :func:`d4` defines it on one image; :func:`d4_transform` applies the same elements to a batch
in TensorFlow as pixel permutations derived from :func:`d4`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

D4_ORDER = 8


def d4(image: np.ndarray, j: int) -> np.ndarray:
    """Element ``j`` of D4 applied to one (H, W, ...) image (a view)."""
    turned = np.rot90(image, j % 4)
    return turned[:, ::-1] if j >= 4 else turned


def d4_permutations(size: int) -> np.ndarray:
    """(8, size²) flat pixel indices: element ``j`` of a size×size image is ``image.flat[perm[j]]``."""
    grid = np.arange(size * size).reshape(size, size)
    return np.stack([d4(grid, j).ravel() for j in range(D4_ORDER)])


def d4_transform(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Apply element k[i] of D4 to image i of a batch (B, S, S, C) of square images.

    Apply it to the channel-concatenation of a pair to transform both alike.
    """
    x = tf.convert_to_tensor(x)
    size = x.shape[1]
    if size is None or size != x.shape[2]:
        raise ValueError(f"D4 needs square images of a static size, not {x.shape}")
    perms = tf.constant(d4_permutations(size), tf.int32)
    flat = tf.reshape(x, (tf.shape(x)[0], size * size, tf.shape(x)[3]))
    out = tf.reshape(tf.gather(flat, tf.gather(perms, k), batch_dims=1), tf.shape(x))
    out.set_shape(x.shape)
    return out
