"""Keras 3 models of SPEC §4: cloud U-Net, CycleGAN generator and PatchGAN discriminator.

Layer names, order and concatenation order mirror the published Keras 2 files in
``reference/weights/`` so that ``model.load_weights`` reads them unchanged.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers

from pvl8da.training.cyclegan_config import NORMTYPES
from pvl8da.errors import InputError
from pvl8da.models.weights import verify_sha256

log = logging.getLogger(__name__)

#: Per-band means (BLUE, RED, NIR, SWIR) removed by the frozen centring convolution.
BAND_OFFSETS = np.array([0.43052389, 0.40560079, 0.46504526, 0.23876471], dtype=np.float32)
#: Largest |weight| accepted on loading. The published and committed weights stay below 1.7; 4 KB of flipped
#: bytes inside any weight tensor of theirs gave values above 1e3 in all of 1,280 trials (above 1e4 in 87 %).
MAX_ABS_WEIGHT = 1e3


@keras.saving.register_keras_serializable(package="pvl8da")
class InstanceNormalization(layers.GroupNormalization):
    """Instance normalisation: Keras' group normalisation with one group per channel (the one FCD's generator
    uses), under this registered name so that the DA weight files, whose paths name the class, still load."""

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True, **kwargs):
        kwargs.pop("groups", None)
        kwargs.pop("axis", None)
        super().__init__(groups=-1, axis=-1, epsilon=epsilon, center=center, scale=scale, **kwargs)


@keras.saving.register_keras_serializable(package="pvl8da")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras batch normalisation whose training-mode pass over NHWC float32 (or bfloat16, with float32
    weights) images runs TensorFlow's fused kernel: one pass forward and one backward, instead of separate
    moments and normalisation ops (a df-64 generator's forward and backward pass on 48 patches of 64²:
    761 → 528 ms on the 2-core CPU). Same weights and the same moving statistics (the biased batch variance,
    as Keras keeps it). Other cases, and other backends, run Keras' own code. Weight files written while the
    class was called ``BatchNormalization`` still load (:func:`load_weights_checked` renames their groups)."""

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and not self.renorm and not self.synchronized
                   and keras.backend.backend() == "tensorflow"
                   and self.scale and self.center and len(inputs.shape) == 4
                   and self.axis in (-1, 3)
                   and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16"))
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), variance.dtype)
        variance = variance * (count - 1.0) / count  # the kernel returns the Bessel-corrected variance
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def _dilated_depthwise(x, kernel, rate: int):
    """TensorFlow: a 'same' depthwise convolution of dilation ``rate`` (odd kernel, stride 1) on oneDNN's own
    dilated kernel, without ``tf.nn.depthwise_conv2d``'s space-to-batch copies. Its registered gradient ignores
    the dilation, so the gradient is given here: to the input, the same convolution with the kernel flipped
    (exact for an odd kernel's symmetric padding); to the kernel, TensorFlow's own gradient through
    space-to-batch (whose forward convolution the graph then never runs)."""
    import tensorflow as tf

    strides, dilations = [1, 1, 1, 1], [1, rate, rate, 1]

    @tf.custom_gradient
    def op(x, kernel):
        y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=kernel, strides=strides, padding="SAME",
                                             dilations=dilations)

        def grad(dy):
            dx = tf.raw_ops.DepthwiseConv2dNative(input=dy, filter=tf.reverse(kernel, [0, 1]), strides=strides,
                                                  padding="SAME", dilations=dilations)
            with tf.GradientTape() as tape:
                tape.watch(kernel)
                y_ref = tf.nn.depthwise_conv2d(x, kernel, strides, "SAME", dilations=[rate, rate])
            return dx, tape.gradient(y_ref, kernel, output_gradients=dy)

        return y, grad

    return op(x, kernel)


@keras.saving.register_keras_serializable(package="pvl8da")
class FusedSeparableConv2D(layers.SeparableConv2D):
    """Keras' separable convolution whose dilated 'same' depthwise step (odd kernel, stride 1, NHWC) runs, on
    TensorFlow, as one oneDNN kernel (:func:`_dilated_depthwise`) instead of space-to-batch, convolution and
    batch-to-space: the forward pass of a generator's dilated layer on 48 patches of 64² 25 → 7 ms, CycleGAN
    training 6-7 % faster in float32 and bfloat16. The same weights, outputs and gradients. Other cases, and
    other backends, run Keras' own code. Weight files written while the layers were Keras' ``SeparableConv2D``
    still load (:func:`load_weights_checked` renames their groups)."""

    def call(self, inputs):
        rate = self.dilation_rate[0]
        fast = (rate > 1 and tuple(self.dilation_rate) == (rate, rate) and tuple(self.strides) == (1, 1)
                and self.padding == "same" and self.data_format == "channels_last"
                and all(k % 2 for k in self.kernel_size) and keras.backend.backend() == "tensorflow")
        if not fast:
            return super().call(inputs)
        import tensorflow as tf

        y = _dilated_depthwise(inputs, tf.convert_to_tensor(self.depthwise_kernel), rate)
        y = tf.nn.conv2d(y, tf.convert_to_tensor(self.pointwise_kernel), 1, "VALID")
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.convert_to_tensor(self.bias))
        return self.activation(y) if self.activation is not None else y


def _centring(x, name: str, sign: float):
    """Frozen 1×1 convolution: identity kernel, bias ``sign``·BAND_OFFSETS."""
    conv = layers.Conv2D(4, 1, name=name, trainable=False)
    y = conv(x)
    conv.set_weights([np.eye(4, dtype=np.float32).reshape(1, 1, 4, 4), sign * BAND_OFFSETS])
    return y


def _norm(x, normtype: str, name: str, momentum: float = 0.99):
    if normtype == "batchnorm":
        return FusedBatchNormalization(momentum=momentum, epsilon=1e-3, name=name)(x)
    if normtype == "instancenorm":
        return InstanceNormalization(name=name)(x)
    return x


def _sep_block(x, filters: int, prefix: str, normtype: str = "batchnorm", dilation: int = 1):
    """Two (SeparableConv 3×3 'same' → norm → ReLU) units named ``<prefix>_<conv|bn|act>_<i>``."""
    for i in (1, 2):
        x = FusedSeparableConv2D(filters, 3, padding="same", dilation_rate=dilation,
                                 name=f"{prefix}_conv_{i}")(x)
        x = _norm(x, normtype, f"{prefix}_bn_{i}")
        x = layers.Activation("relu", name=f"{prefix}_act_{i}")(x)
    return x


def build_cloud_unet(input_shape=(None, None, 4)) -> keras.Model:
    """Cloud U-Net (32-64-128) returning the cloud probability (H, W, 1); H and W multiples of 4."""
    inp = keras.Input(shape=input_shape, name="input_1")
    x = _centring(inp, "normalization", -1.0)
    skip1 = _sep_block(x, 32, "input")
    x = layers.MaxPooling2D(2, name="pooling_1")(skip1)
    x = layers.Dropout(0.0, name="dropout_pool1")(x)
    skip2 = _sep_block(x, 64, "pool1")
    x = layers.MaxPooling2D(2, name="pooling_2")(skip2)
    x = layers.Dropout(0.0, name="dropout_pool2")(x)
    x = _sep_block(x, 128, "pool2")
    x = layers.Conv2DTranspose(64, 2, strides=2, padding="same", name="upconv1")(x)
    x = layers.Concatenate(axis=3, name="concatenate_up_1")([x, skip2])
    x = layers.Dropout(0.0, name="dropout_up1")(x)
    x = _sep_block(x, 64, "up1")
    x = layers.Conv2DTranspose(32, 2, strides=2, padding="same", name="upconv2")(x)
    x = layers.Concatenate(axis=3, name="concatenate_up_2")([x, skip1])
    x = layers.Dropout(0.0, name="dropout_up2")(x)
    x = _sep_block(x, 32, "up2")
    out = layers.Conv2D(1, 1, activation="sigmoid", name="linear_model")(x)
    return keras.Model(inp, out, name="cloud_unet")


def build_generator(df: int = 64, normtype: str = "batchnorm", input_shape=(None, None, 4)) -> keras.Model:
    """CycleGAN generator (one direction): 4-band reflectance in, 4-band reflectance out."""
    if normtype not in NORMTYPES:
        raise InputError(f"normtype {normtype!r}: expected one of {', '.join(NORMTYPES)}")
    inp = keras.Input(shape=input_shape, name="ip_gen")
    centred = _centring(inp, "normalization_gen_in", -1.0)
    block1 = _sep_block(centred, df, "generator_block_1", normtype)
    concat1 = layers.Concatenate(axis=-1, name="gen_concatenate_1")([centred, block1])
    block2 = _sep_block(concat1, df, "generator_block_2", normtype, dilation=2)
    concat2 = layers.Concatenate(axis=-1, name="gen_concatenate_2")([block2, concat1])
    out_conv = layers.Conv2D(4, 1, name="out_generator")
    x = out_conv(concat2)
    _start_as_identity(out_conv, first=df)
    out = _centring(x, "normalization_gen_out", 1.0)
    return keras.Model(inp, out, name="generator")


def _start_as_identity(out_conv: layers.Conv2D, first: int, feature_scale: float = 0.01) -> None:
    """Initialise the generator's output convolution so that a new generator is (nearly) the identity:
    the centred input channels (``first`` … ``first + 3`` of its input) map to themselves and the
    learnt features enter at ``feature_scale`` (1 %) of their default scale. Adaptation between two similar domains
    then starts from "change nothing" instead of from noise (no effect on loaded weights)."""
    kernel, bias = out_conv.get_weights()
    kernel = kernel * feature_scale
    kernel[0, 0, first:first + 4, :] = np.eye(4, dtype=kernel.dtype)
    out_conv.set_weights([kernel, np.zeros_like(bias)])


def build_discriminator(df: int = 8, normtype: str = "batchnorm", input_shape=(None, None, 4)) -> keras.Model:
    """PatchGAN discriminator: one logit per patch (stride 16)."""
    if normtype not in NORMTYPES:
        raise InputError(f"normtype {normtype!r}: expected one of {', '.join(NORMTYPES)}")
    inp = keras.Input(shape=input_shape, name="ip_disc")
    x = _centring(inp, "normalization_disc_in", -1.0)
    for i, mult in enumerate((1, 2, 4, 8), start=1):
        x = layers.Conv2D(df * mult, 4, strides=2, padding="same", name=f"disc_conv_{i}")(x)
        if i > 1:
            x = _norm(x, normtype, f"disc_norm_{i}", momentum=0.8)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"disc_act_{i}")(x)
    out = layers.Conv2D(1, 1, name="disc_logits")(x)
    return keras.Model(inp, out, name="discriminator")


def _weighted_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if layer.weights]


def _check_legacy_h5(model: keras.Model, path: Path) -> None:
    """Compare a Keras 2 HDF5 file's layers (order-based, as Keras loads them) with the model's."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise InputError(f"{path}: not a Keras weights file (no layer_names)")
        saved = []
        for name in (n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]):
            names = [w.decode() if isinstance(w, bytes) else w for w in group[name].attrs["weight_names"]]
            if names:
                saved.append((name, [group[name][w].shape for w in names]))
    ours = _weighted_layers(model)
    for k, (layer, (name, shapes)) in enumerate(zip(ours, saved)):
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(s) for s in shapes] != expected:
            raise InputError(
                f"{path}: weights do not fit model {model.name!r}: layer #{k} {layer.name!r} expects "
                f"shapes {expected}, the file's layer {name!r} holds {[tuple(s) for s in shapes]}")
    if len(ours) != len(saved):
        first = ours[len(saved)].name if len(ours) > len(saved) else saved[len(ours)][0]
        raise InputError(
            f"{path}: weights do not fit model {model.name!r}: the model has {len(ours)} layers with "
            f"weights, the file {len(saved)}; first unmatched layer {first!r}")


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_store_names(model: keras.Model) -> dict:
    """The names Keras 3 gives each layer in a ``.weights.h5`` file: class name in snake case, numbered."""
    used: dict[str, int] = {}
    names = {}
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        names[layer.name] = base if used[base] == 0 else f"{base}_{used[base]}"
    return names


@contextmanager
def _renamed_fused_groups(model: keras.Model, path: Path) -> Iterator[Path]:
    """``path``, or a temporary copy of it whose ``batch_normalization*`` and ``separable_conv2d*`` groups
    (written while :class:`FusedBatchNormalization` and :class:`FusedSeparableConv2D` were Keras' own classes)
    carry the classes' current names."""
    expected = set(_keras3_store_names(model).values())
    with h5py.File(path, "r") as f:
        stored = list(f["layers"]) if "layers" in f else []
    old = [key for key in stored if key not in expected and f"fused_{key}" in expected]
    if not old:
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as f:
            for key in old:
                f["layers"].move(key, f"fused_{key}")
        log.info("%s: %d layer groups renamed to the current class names", path, len(old))
        yield copy


def _check_keras3_h5(model: keras.Model, path: Path) -> None:
    """Compare a Keras 3 ``.weights.h5`` file's per-layer variables with the model's."""
    store_names = _keras3_store_names(model)
    with h5py.File(path, "r") as f:
        if "layers" not in f:
            raise InputError(f"{path}: not a Keras 3 weights file (no 'layers' group)")
        saved = f["layers"]
        for layer in _weighted_layers(model):
            key = store_names[layer.name]
            vars_ = saved[key]["vars"] if key in saved and "vars" in saved[key] else {}
            shapes = [tuple(vars_[str(i)].shape) for i in range(len(vars_))]
            expected = [tuple(w.shape) for w in layer.weights]
            if shapes != expected:
                raise InputError(
                    f"{path}: weights do not fit model {model.name!r}: layer {layer.name!r} expects "
                    f"shapes {expected}, the file's {key!r} holds {shapes}")


def load_weights_checked(model: keras.Model, path: str | Path) -> keras.Model:
    """Load weights (Keras 2 ``.hdf5``/``.h5`` or Keras 3 ``.weights.h5``/``.keras``) into ``model``.

    Raises InputError naming the file and what is wrong: a SHA-256 other than its manifest's
    (:mod:`pvl8da.models.weights`), weights of another architecture (the first mismatching layer) or
    implausible values (:func:`check_weight_values`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    verify_sha256(path)
    name = path.name
    try:
        if name.endswith(".weights.h5"):
            with _renamed_fused_groups(model, path) as current:
                _check_keras3_h5(model, current)
                model.load_weights(current)
        else:
            if name.endswith((".h5", ".hdf5")):
                _check_legacy_h5(model, path)
            elif not name.endswith(".keras"):
                raise InputError(f"{path}: unknown weights format (expected .weights.h5, .keras, .h5 or .hdf5)")
            model.load_weights(path)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:  # h5py: RuntimeError for a damaged file structure
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: cannot load weights into model {model.name!r}: {exc}") from exc
    check_weight_values(model, path)
    log.info("loaded weights %s into %s", path, model.name)
    return model


def check_weight_values(model: keras.Model, path: str | Path) -> None:
    """InputError naming the file and the layer unless every weight is finite with |w| ≤ MAX_ABS_WEIGHT and
    every batch-norm moving variance is ≥ 0 (flipped bytes in a weights file break these)."""
    for layer in model.layers:
        for weight in layer.weights:
            values = keras.ops.convert_to_numpy(weight)
            finite = np.isfinite(values)
            if not finite.all():
                problem = f"{values.size - np.count_nonzero(finite)} of {values.size} values are NaN or infinite"
            elif values.size and np.abs(values).max() > MAX_ABS_WEIGHT:
                problem = f"|value| up to {np.abs(values).max():.3g}, above the plausible {MAX_ABS_WEIGHT:g}"
            elif weight is getattr(layer, "moving_variance", None) and (values < 0).any():
                problem = f"negative moving variance {values.min():.3g}"
            else:
                continue
            raise InputError(f"{path}: implausible weights in layer {layer.name!r} ({weight.name}): {problem}; "
                             "corrupt file?")


def _settings_path(generator: Path) -> Path:
    """Where TrainCycleGAN keeps a generator's settings: beside ``<stem>.weights.h5`` or its ``<stem>_epochs/``."""
    if generator.parent.name.endswith("_epochs"):
        return generator.parent.with_name(generator.parent.name.removesuffix("_epochs") + "_config.json")
    return generator.with_name(generator.name.removesuffix(".weights.h5") + "_config.json")


def load_da_models(cloud_weights: str | Path, generators: dict[str, str | Path]) -> tuple[keras.Model, dict]:
    """The cloud U-Net and the named PV -> LU generators with checked weights; each generator is built with the
    ``df_gen`` and ``normtype`` of the ``<stem>_config.json`` TrainCycleGAN writes beside ``<stem>.weights.h5``
    (and beside the ``<stem>_epochs/`` folder of its per-epoch generators), else with the published settings
    (64, batchnorm: ``full.hdf5``, the committed checkpoints)."""
    import json

    unet = load_weights_checked(build_cloud_unet(), cloud_weights)
    built = {}
    for name, path in generators.items():
        path = Path(path)
        config = _settings_path(path)
        try:
            settings = json.loads(config.read_text()) if path.name.endswith(".weights.h5") and config.is_file() else {}
        except (OSError, ValueError) as exc:
            raise InputError(f"{config}: cannot read the generator's settings ({exc})") from exc
        model = build_generator(int(settings.get("df_gen", 64)), settings.get("normtype", "batchnorm"))
        built[name] = load_weights_checked(model, path)
    return unet, built
