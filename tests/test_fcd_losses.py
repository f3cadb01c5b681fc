"""Every FCD loss term against values computed by hand on small tensors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from pvl8da.training import fcd_losses as losses

LN2 = math.log(2.0)


def t(values) -> tf.Tensor:
    return tf.constant(np.asarray(values, np.float32))


def test_critic_and_adversarial():
    assert float(losses.critic_loss(t([1, 2]), t([3, 5]))) == pytest.approx(-1.5 + 4.0)
    assert float(losses.adversarial_loss(t([[1.0], [3.0]]))) == pytest.approx(-2.0)


def test_classification_bce():
    # BCE(logit 0, y 1) = ln 2; BCE(logit ln 3, y 0) = -ln(1 - 3/4) = ln 4
    got = losses.classification_loss(t([[0.0], [math.log(3.0)]]), t([[1.0], [0.0]]))
    assert float(got) == pytest.approx((LN2 + 2 * LN2) / 2, rel=1e-6)


def test_l1():
    assert float(losses.l1_loss(t([1, -1]), t([0, 1]))) == pytest.approx(1.5)


def test_gradient_penalty_linear_critic():
    w = t([3.0, 4.0]).numpy().reshape(1, 2, 1, 1)  # gradient of sum(w * z) is w, norm 5
    real, fake = tf.ones((2, 2, 1, 1)), tf.zeros((2, 2, 1, 1))
    gp = losses.gradient_penalty(lambda z: z * w, real, fake, tf.fill((2, 1, 1, 1), 0.3))
    assert float(gp) == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_uses_interpolate():
    # critic z**2: gradient 2·x̂; x̂ = 0.5 on both pixels -> norm sqrt(2); alpha 1 -> x̂ = 1 -> norm 2 sqrt(2)
    real, fake = tf.ones((2, 1, 2, 1)), tf.zeros((2, 1, 2, 1))
    alpha = t([0.5, 1.0]).numpy().reshape(2, 1, 1, 1)
    gp = losses.gradient_penalty(lambda z: z * z, real, fake, alpha)
    expected = ((math.sqrt(2) - 1) ** 2 + (2 * math.sqrt(2) - 1) ** 2) / 2
    assert float(gp) == pytest.approx(expected, rel=1e-5)


def test_discriminator_total_weights():
    w = losses.GANWeights(gp=10, cls=2)
    terms = losses.discriminator_total(t([1.0]), t([2.0]), t([[0.0]]), t([[1.0]]), tf.constant(0.5), w)
    assert float(terms["d_adv"]) == pytest.approx(1.0)
    assert float(terms["d_cls"]) == pytest.approx(LN2)
    assert float(terms["total"]) == pytest.approx(1.0 + 2 * LN2 + 10 * 0.5, rel=1e-6)


def test_generator_total_fixed_point_terms():
    x = t([[0.0, 0.0]])
    same = t([[0.5, -0.5]])  # identity |same - x| = 0.5
    rec = t([[1.0, 1.0]])  # |rec - x| = 1
    rec_same = t([[0.0, 0.25]])  # 0.125
    zero_logit = t([[0.0]])
    terms = losses.generator_total(x, t([[1.0]]), t([[0.0]]), t([[2.0]]), zero_logit, same, t([[-1.0]]),
                                   zero_logit, rec, rec_same, losses.GANWeights())
    expected = {"g_adv": -2.0, "g_adv_same": 1.0, "g_cls": LN2, "g_cls_same": LN2,
                "g_rec": 1.0, "g_rec_same": 0.125, "g_idt": 0.5}
    for k, v in expected.items():
        assert float(terms[k]) == pytest.approx(v, rel=1e-6), k
    total = -2 + 1 + 1 * (2 * LN2) + 10 * (1 + 0.125) + 10 * 0.5
    assert float(terms["total"]) == pytest.approx(total, rel=1e-6)


def test_masked_pixel_bce_ignores_invalid():
    logits = t([0.0, 0.0, 100.0]).numpy().reshape(1, 1, 3, 1)
    targets = t([1.0, 0.0, 0.0]).numpy().reshape(1, 1, 3, 1)
    valid = t([1.0, 1.0, 0.0]).numpy().reshape(1, 1, 3, 1)
    assert float(losses.masked_pixel_bce(logits, targets, valid)) == pytest.approx(LN2, rel=1e-6)
