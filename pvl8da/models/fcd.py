"""Keras 3 models of FCD: the Fixed-Point GAN generator and discriminator, and the FCD+ U-Net."""
from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from pvl8da.models.da import FusedBatchNormalization

N_BANDS = 10


def _instance_norm(name: str) -> layers.Layer:
    """Instance normalisation (one group per channel, affine): the layer behind ``models.da.InstanceNormalization``,
    kept under Keras' class name because FCD weight files name it in their paths."""
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


class FillKeep(layers.Layer):
    """``tanh(delta + x)`` where the input is valid; exactly −1 on fill pixels (all bands at −1)."""

    def call(self, delta, x):
        fill = ops.all(x <= -1.0, axis=-1, keepdims=True)
        return ops.where(fill, -ops.ones_like(x), ops.tanh(delta + x))


class TileDomain(layers.Layer):
    """Broadcast a (batch, 1) domain bit to a (batch, H, W, 1) plane and append it to the image."""

    def call(self, x, c):
        plane = ops.ones_like(x[..., :1]) * ops.reshape(ops.cast(c, x.dtype), (-1, 1, 1, 1))
        return ops.concatenate([x, plane], axis=-1)


def build_generator(width: int = 64, n_res: int = 6, n_bands: int = N_BANDS) -> keras.Model:
    """Fixed-Point GAN generator ``G(x, c)``: x in [−1, 1] (any size, a multiple of 4), c the cloudy bit.

    7×7 conv, two stride-2 downsamplings, ``n_res`` residual blocks with instance norm, two
    upsamplings, 7×7 conv to the bands; the output is ``tanh(delta + x)`` with fill kept at −1.
    Instance normalisation sits inside the residual branches only (SPEC §7): normalising the stem or
    the resampling layers would erase each patch's absolute radiometry, which is what tells a cloud and
    what the identity ``G(x, c_x) = x`` through the tanh needs.
    """
    x_in = keras.Input((None, None, n_bands), name="image")
    c_in = keras.Input((1,), name="domain")
    h = TileDomain(name="tile_domain")(x_in, c_in)
    h = layers.Conv2D(width, 7, padding="same", activation="relu", name="stem")(h)
    w = width
    for i in range(2):
        w *= 2
        h = layers.Conv2D(w, 4, strides=2, padding="same", activation="relu", name=f"down{i}")(h)
    for i in range(n_res):
        r = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"res{i}_a")(h)
        r = layers.ReLU()(_instance_norm(f"res{i}_a_in")(r))
        r = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"res{i}_b")(r)
        h = layers.Add()([h, _instance_norm(f"res{i}_b_in")(r)])
    for i in range(2):
        w //= 2
        h = layers.Conv2DTranspose(w, 4, strides=2, padding="same", activation="relu", name=f"up{i}")(h)
    delta = layers.Conv2D(n_bands, 7, padding="same", use_bias=False, name="delta")(h)
    out = FillKeep(name="fill_keep")(delta, x_in)
    return keras.Model([x_in, c_in], out, name="fcd_generator")


def build_discriminator(
    image_size: int = 128, width: int = 64, n_layers: int = 6, n_bands: int = N_BANDS
) -> keras.Model:
    """Discriminator: ``n_layers`` stride-2 4×4 convs (LeakyReLU 0.01), a 3×3 real/fake head
    (WGAN critic map) and a classification head (one cloudy logit per image)."""
    if image_size % 2**n_layers:
        raise ValueError(f"image_size {image_size} must be a multiple of {2 ** n_layers}")
    x_in = keras.Input((image_size, image_size, n_bands), name="image")
    h = x_in
    w = width
    for i in range(n_layers):
        h = layers.Conv2D(w, 4, strides=2, padding="same", name=f"conv{i}")(h)
        h = layers.LeakyReLU(negative_slope=0.01)(h)
        w *= 2
    src = layers.Conv2D(1, 3, padding="same", use_bias=False, name="src")(h)
    k = image_size // 2**n_layers
    cls = layers.Conv2D(1, k, padding="valid", use_bias=False, name="cls")(h)
    cls = layers.Reshape((1,), name="cls_logit")(cls)
    return keras.Model(x_in, [src, cls], name="fcd_discriminator")


def _conv_bn(h, filters: int, kernel: int, strides: int = 1, relu: bool = True, name: str = ""):
    h = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(h)
    h = FusedBatchNormalization(name=f"{name}_bn")(h)
    return layers.ReLU()(h) if relu else h


def _basic_block(h, filters: int, strides: int, name: str):
    """ResNet basic block: two 3×3 conv-BN, projection shortcut where the shape changes."""
    r = _conv_bn(h, filters, 3, strides, name=f"{name}_a")
    r = _conv_bn(r, filters, 3, relu=False, name=f"{name}_b")
    if strides != 1 or h.shape[-1] != filters:
        h = _conv_bn(h, filters, 1, strides, relu=False, name=f"{name}_proj")
    return layers.ReLU()(layers.Add()([h, r]))


def build_unet(
    width: int = 64, blocks: Sequence[int] = (3, 4, 6, 3), n_bands: int = N_BANDS
) -> keras.Model:
    """FCD+ U-Net: ResNet-34-style encoder (``blocks`` basic blocks per stage, widths ×1, ×2, ×4, ×8)
    with a U-Net decoder, outputs ``[pixel logits (B, H, W, 1), image logit (B, 1)]``.

    Layers of the encoder are named ``enc_*`` (frozen when fine-tuning). H and W: multiples of 32.
    """
    x_in = keras.Input((None, None, n_bands), name="image")
    stem = _conv_bn(x_in, width, 7, 2, name="enc_stem")  # 1/2
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="enc_pool")(stem)  # 1/4
    skips = [stem]
    for s, n in enumerate(blocks):
        for b in range(n):
            strides = 2 if (s > 0 and b == 0) else 1
            h = _basic_block(h, width * 2**s, strides, name=f"enc_s{s}b{b}")
        skips.append(h)
    deep = skips.pop()  # 1/32
    cls = layers.GlobalAveragePooling2D(name="cls_pool")(deep)
    cls = layers.Dense(1, name="cls_logit")(cls)
    h = deep
    dec_widths = [width * 4, width * 2, width, width // 2, max(width // 4, 1)]
    for i, w in enumerate(dec_widths):
        h = layers.UpSampling2D(2, name=f"dec{i}_up")(h)
        if skips:
            h = layers.Concatenate(name=f"dec{i}_cat")([h, skips.pop()])
        h = _conv_bn(h, w, 3, name=f"dec{i}_a")
        h = _conv_bn(h, w, 3, name=f"dec{i}_b")
    seg = layers.Conv2D(1, 3, padding="same", name="seg_logit")(h)
    return keras.Model(x_in, [seg, cls], name="fcd_unet")


def set_encoder_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the U-Net encoder (layers named ``enc_*``)."""
    for layer in model.layers:
        if layer.name.startswith("enc_"):
            layer.trainable = trainable
