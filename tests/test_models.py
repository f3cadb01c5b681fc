"""Models of SPEC §4: the published weights load unchanged and reproduce the golden patch outputs."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from pvl8da.errors import InputError
from pvl8da.models.folded import folded_graph
from pvl8da.models.da import (FusedBatchNormalization, FusedSeparableConv2D, InstanceNormalization, build_cloud_unet,
                           build_discriminator, build_generator, load_weights_checked)


@pytest.fixture(scope="module")
def published(reference_dir):
    generator = load_weights_checked(build_generator(), reference_dir / "weights/full.hdf5")
    unet = load_weights_checked(build_cloud_unet(), reference_dir / "weights/cloud_detection_l8.hdf5")
    golden = np.load(reference_dir / "golden/models/patch_io.npz")
    return generator, unet, golden


def test_golden_patch_outputs(published):
    generator, unet, golden = published
    x = golden["x"][None]
    adapted = generator.predict_on_batch(x)
    assert np.abs(adapted[0] - golden["generator"]).max() <= 1e-3
    assert np.abs(unet.predict_on_batch(x)[0] - golden["clouds"]).max() <= 1e-3
    assert np.abs(unet.predict_on_batch(adapted)[0] - golden["clouds_of_generator"]).max() <= 1e-3


def test_folded_graph_equals_keras(published):
    generator, unet, golden = published
    x = tf.constant(golden["x"][None, :128, :96])
    assert np.abs(folded_graph(generator)(x).numpy() - generator(x, training=False).numpy()).max() < 1e-5
    assert np.abs(folded_graph(unet)(x).numpy() - unet(x, training=False).numpy()).max() < 1e-5


def test_other_architecture_names_the_layer(reference_dir):
    with pytest.raises(InputError, match="cloud_detection_l8.hdf5.*'generator_block_1_conv_1'.*'input_conv_1'"):
        load_weights_checked(build_generator(), reference_dir / "weights/cloud_detection_l8.hdf5")
    with pytest.raises(InputError, match="full.hdf5.*'input_conv_1'"):
        load_weights_checked(build_cloud_unet(), reference_dir / "weights/full.hdf5")


def test_keras3_weights_round_trip_and_mismatch(tmp_path):
    unet = build_cloud_unet()
    path = tmp_path / "u.weights.h5"
    unet.save_weights(path)
    other = load_weights_checked(build_cloud_unet(), path)
    x = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 4)).astype(np.float32)
    assert np.array_equal(other(x), unet(x))
    with pytest.raises(InputError, match="u.weights.h5.*'generator_block_1_conv_1'"):
        load_weights_checked(build_generator(), path)
    with pytest.raises(InputError, match="weights file not found"):
        load_weights_checked(unet, tmp_path / "none.weights.h5")


def test_instance_norm_generator_saves_as_keras(tmp_path):
    generator = build_generator(df=8, normtype="instancenorm")
    x = np.random.default_rng(0).uniform(0, 1, (2, 20, 24, 4)).astype(np.float32)
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert np.abs(loaded(x) - generator(x)).max() < 1e-6
    norm = InstanceNormalization()
    y = norm(x * 3 + 1).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1, atol=1e-2)


def test_shapes_any_size():
    x = np.zeros((1, 64, 48, 4), np.float32)
    assert build_discriminator()(x).shape == (1, 4, 3, 1)
    assert build_generator(df=8, normtype="no")(x).shape == (1, 64, 48, 4)
    assert build_cloud_unet()(x).shape == (1, 64, 48, 1)
    with pytest.raises(InputError, match="normtype"):
        build_generator(normtype="groupnorm")


@pytest.mark.parametrize("normtype", ["batchnorm", "instancenorm", "no"])
def test_new_generator_starts_near_identity(normtype):
    x = np.random.default_rng(0).uniform(0.02, 0.8, (2, 32, 32, 4)).astype(np.float32)
    generator = build_generator(df=16, normtype=normtype)
    assert np.abs(generator(x, training=False).numpy() - x).mean() < 0.01
    kernel = generator.get_layer("out_generator").get_weights()[0][0, 0]
    assert np.array_equal(kernel[16:20], np.eye(4)) and np.abs(kernel[:16]).max() < 0.01


@pytest.mark.parametrize("momentum", [0.99, 0.0])
def test_fused_batch_norm_equals_keras_batch_norm(momentum):
    x = tf.constant(np.random.default_rng(3).normal(1.5, 2.0, (6, 9, 7, 5)).astype(np.float32))
    ours, theirs = FusedBatchNormalization(momentum=momentum), keras.layers.BatchNormalization(momentum=momentum)
    ours.build(x.shape)
    theirs.build(x.shape)
    rng = np.random.default_rng(4)
    weights = [rng.uniform(0.5, 2, 5), rng.normal(0, 1, 5), rng.normal(0, 1, 5), rng.uniform(0.5, 2, 5)]
    for layer in (ours, theirs):
        layer.set_weights([w.astype(np.float32) for w in weights])
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert type(ours).__name__ != keras.layers.BatchNormalization.__name__  # no shadowed Keras name
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_separable_conv_equals_keras_separable_conv(policy):
    """The dilated depthwise step on oneDNN's own kernel, with its own gradient: the same outputs and gradients
    as Keras' layer (odd sizes, so that space-to-batch pads)."""
    rng = np.random.default_rng(5)
    x = tf.constant(rng.standard_normal((2, 21, 17, 5)).astype(np.float32))
    keras.config.set_dtype_policy(policy)
    try:
        ours = FusedSeparableConv2D(8, 3, padding="same", dilation_rate=2, activation="relu")
        theirs = keras.layers.SeparableConv2D(8, 3, padding="same", dilation_rate=2, activation="relu")
    finally:
        keras.config.set_dtype_policy("float32")
    for layer in (ours, theirs):
        layer.build(x.shape)
    theirs.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in ours.get_weights()])
    ours.set_weights(theirs.get_weights())
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.sin(tf.cast(y, tf.float32)))
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_variables])])
    assert results[0][0].dtype == (tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32)
    for a, b in zip(*results):
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32), rtol=1e-5, atol=1e-5)


def test_weight_files_from_before_the_fused_layers_still_load(tmp_path):
    """Files whose groups carry the classes' former names (``batch_normalization*``, ``separable_conv2d*``) load
    into today's model."""
    import h5py

    written = build_generator(df=8)
    written.set_weights([np.random.default_rng(i).normal(0, 0.1, w.shape).astype(np.float32) + (w.ndim == 1)
                         for i, w in enumerate(written.get_weights())])
    path = tmp_path / "old.weights.h5"
    written.save_weights(path)
    with h5py.File(path, "r+") as f:
        renamed = [key for key in list(f["layers"]) if key.startswith("fused_")]
        for key in renamed:
            f["layers"].move(key, key.removeprefix("fused_"))
    assert {key.split("_")[1] for key in renamed} == {"batch", "separable"}
    loaded = load_weights_checked(build_generator(df=8), path)
    for a, b in zip(written.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
