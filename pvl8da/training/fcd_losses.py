"""Loss terms of the Fixed-Point GAN (WGAN-GP, classification, reconstruction, identity) and FCD+."""
from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from pvl8da.runtime import float32
from pvl8da.training.configs import GANWeights  # noqa: F401  (re-exported: the loss weights)


def critic_loss(real_src: tf.Tensor, fake_src: tf.Tensor) -> tf.Tensor:
    """WGAN critic loss ``−E[D(real)] + E[D(fake)]``."""
    return -tf.reduce_mean(float32(real_src)) + tf.reduce_mean(float32(fake_src))


def adversarial_loss(fake_src: tf.Tensor) -> tf.Tensor:
    """WGAN generator loss ``−E[D(fake)]``."""
    return -tf.reduce_mean(float32(fake_src))


def classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of image-level logits against 0/1 labels."""
    logits = float32(logits)
    labels = tf.cast(tf.reshape(labels, tf.shape(logits)), logits.dtype)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def l1_loss(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference."""
    return tf.reduce_mean(tf.abs(float32(a) - float32(b)))


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor
) -> tf.Tensor:
    """WGAN-GP: mean over samples of ``(‖∇ D(x̂)‖₂ − 1)²`` at ``x̂ = α·real + (1 − α)·fake``.

    ``alpha`` has one value per sample (shape (B, 1, 1, 1)); the gradient is that of the sum of the
    critic map, its norm taken over all pixels and bands of a sample.
    """
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = tf.reduce_sum(float32(critic(x_hat)))
    grad = tape.gradient(out, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def discriminator_total(
    real_src, fake_src, real_cls_logits, labels, gp, w: GANWeights = GANWeights()
) -> dict[str, tf.Tensor]:
    """All terms of the discriminator loss and their weighted sum under key ``total``."""
    terms = {
        "d_adv": critic_loss(real_src, fake_src),
        "d_cls": classification_loss(real_cls_logits, labels),
        "d_gp": gp,
    }
    terms["total"] = terms["d_adv"] + w.cls * terms["d_cls"] + w.gp * terms["d_gp"]
    return terms


def generator_total(
    x, target, labels, fake_src, fake_cls, same, same_src, same_cls, rec, rec_same,
    w: GANWeights = GANWeights(),
) -> dict[str, tf.Tensor]:
    """All Fixed-Point GAN generator terms and their weighted sum under key ``total``.

    Cross-domain: ``fake = G(x, target)`` with critic/class outputs ``fake_src``/``fake_cls``,
    ``rec = G(fake, labels)``. Same domain: ``same = G(x, labels)`` with ``same_src``/``same_cls``,
    ``rec_same = G(same, labels)``; identity ``|same − x|``.
    """
    terms = {
        "g_adv": adversarial_loss(fake_src),
        "g_adv_same": adversarial_loss(same_src),
        "g_cls": classification_loss(fake_cls, target),
        "g_cls_same": classification_loss(same_cls, labels),
        "g_rec": l1_loss(rec, x),
        "g_rec_same": l1_loss(rec_same, x),
        "g_idt": l1_loss(same, x),
    }
    terms["total"] = (
        terms["g_adv"] + terms["g_adv_same"]
        + w.cls * (terms["g_cls"] + terms["g_cls_same"])
        + w.rec * (terms["g_rec"] + terms["g_rec_same"])
        + w.idt * terms["g_idt"]
    )
    return terms


def masked_pixel_bce(logits: tf.Tensor, targets: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy of pixel logits (B, H, W, 1) averaged over valid pixels only."""
    logits = float32(logits)
    targets = tf.cast(tf.reshape(targets, tf.shape(logits)), logits.dtype)
    valid = tf.cast(tf.reshape(valid, tf.shape(logits)), logits.dtype)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_sum(bce * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)
