"""FCD networks: shapes, fill kept at −1 by the generator, frozen U-Net encoder."""
from __future__ import annotations

import numpy as np

from pvl8da.models.fcd import build_discriminator, build_generator, build_unet, set_encoder_trainable


def test_generator_keeps_fill_and_range():
    g = build_generator(width=4, n_res=1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, (2, 32, 32, 10)).astype(np.float32)
    x[:, :7, :5] = -1.0
    x[1, 20:, 20:] = -1.0
    for c in (0.0, 1.0):
        y = np.asarray(g([x, np.full((2, 1), c, np.float32)]))
        assert y.shape == x.shape
        fill = np.all(x == -1, axis=-1)
        assert np.all(y[fill] == -1.0)
        assert np.all(np.abs(y[~fill]) < 1.0)


def test_generator_paper_architecture():
    g = build_generator()
    names = [layer.name for layer in g.layers]
    assert g.get_layer("stem").kernel_size == (7, 7)
    assert sum(n.startswith("down") and not n.endswith("_in") for n in names) == 2
    assert sum(n.startswith("res") and n.endswith("_a") for n in names) == 6
    assert g.get_layer("delta").filters == 10


def test_discriminator_heads():
    d = build_discriminator(image_size=128, width=4)
    src, cls = d(np.zeros((3, 128, 128, 10), np.float32))
    assert src.shape == (3, 2, 2, 1) and cls.shape == (3, 1)
    convs = [layer for layer in d.layers if layer.name.startswith("conv")]
    assert len(convs) == 6 and all(c.strides == (2, 2) and c.kernel_size == (4, 4) for c in convs)


def test_unet_outputs_and_freeze():
    u = build_unet(width=4, blocks=(1, 1, 1, 1))
    seg, cls = u(np.zeros((2, 64, 96, 10), np.float32))
    assert seg.shape == (2, 64, 96, 1) and cls.shape == (2, 1)
    n_all = len(u.trainable_weights)
    set_encoder_trainable(u, False)
    assert 0 < len(u.trainable_weights) < n_all
    assert all(not w.path.startswith("enc_") for w in u.trainable_weights)


def test_unet_resnet34_stages():
    u = build_unet(width=8)
    blocks = {layer.name.split("_")[1] for layer in u.layers if layer.name.startswith("enc_s")}
    per_stage = [sum(b.startswith(f"s{s}b") for b in blocks) for s in range(4)]
    assert per_stage == [3, 4, 6, 3]
