"""The one D4 augmentation: its elements, the batched TensorFlow form, and the shared summary writer."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pvl8da.training.augment import D4_ORDER, d4, d4_transform
from pvl8da.training.summaries import Writer


def test_d4_elements_are_rotations_then_mirror():
    a = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    for j in range(4):
        assert np.array_equal(d4(a, j), np.rot90(a, j))
        assert np.array_equal(d4(a, j + 4), np.rot90(a, j)[:, ::-1])
    assert len({d4(a[..., 0], j).tobytes() for j in range(D4_ORDER)}) == D4_ORDER


def test_batched_transform_matches_per_image_definition():
    rng = np.random.default_rng(3)
    x = rng.random((16, 5, 5, 3)).astype(np.float32)
    k = rng.integers(0, D4_ORDER, 16).astype(np.int32)
    out = d4_transform(tf.constant(x), tf.constant(k)).numpy()
    for i in range(16):
        assert np.array_equal(out[i], d4(x[i], int(k[i])))
    traced = tf.function(lambda t: d4_transform(t, tf.constant(k))).get_concrete_function(tf.TensorSpec(x.shape))
    assert tuple(traced.structured_outputs.shape) == x.shape


def test_transform_refuses_non_square_images():
    with pytest.raises(ValueError, match="square"):
        d4_transform(tf.zeros((1, 4, 6, 1)), tf.constant([0]))


def test_writer_writes_scalars_and_images(tmp_path):
    writer = Writer(tmp_path / "tb")
    writer.scalars({"loss/a": 1.5, "loss/b": tf.constant(2.0)}, 3)
    writer.images({"samples/x": np.random.default_rng(0).random((2, 4, 4, 3))}, 3)
    writer.close()
    events = list((tmp_path / "tb").iterdir())
    assert len(events) == 1 and events[0].stat().st_size > 0
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0])) for v in e.summary.value}
    assert tags == {"loss/a", "loss/b", "samples/x"}
