"""CycleGAN losses against hand-computed values, D4 augmentation, training with checkpoint and resume."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from pvl8da.training import cyclegan as cg
from pvl8da.errors import InputError


# ---------------------------------------------------------------------------------- tiny networks
def _linear(name: str, scale: float = 1.0, activation=None) -> keras.Model:
    inp = keras.Input((None, None, 4))
    out = keras.layers.Conv2D(4 if activation is None else 1, 1, activation=activation, name=f"{name}_conv")(inp)
    model = keras.Model(inp, out, name=name)
    if activation is None:
        model.layers[-1].set_weights([scale * np.eye(4, dtype=np.float32).reshape(1, 1, 4, 4), np.zeros(4, np.float32)])
    return model


def _disc(name: str) -> keras.Model:
    inp = keras.Input((None, None, 4))
    x = keras.layers.Conv2D(4, 4, strides=2, padding="same")(inp)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    return keras.Model(inp, keras.layers.Conv2D(1, 1)(x), name=name)


def tiny_networks(g_scale: float = 1.0) -> cg.Networks:
    """Generators initialised as x -> g_scale·x (G) and identity (F), small PatchGANs, a sigmoid cloud model."""
    keras.utils.set_random_seed(0)
    cloud = _linear("cloud", activation="sigmoid")
    cloud.layers[-1].set_weights([np.array([1.0, -2.0, 3.0, 0.5], np.float32).reshape(1, 1, 4, 1),
                                  np.array([-0.5], np.float32)])
    return cg.Networks(_linear("G", g_scale), _linear("F"), _disc("DLU"), _disc("DPV"), cloud)


def write_pairs(path, n: int = 16, size: int = 16, seed: int = 0, scenes: int = 2):
    """``n`` patch pairs, LU = 1.1 PV + 0.02, from ``scenes`` pairs (PAIR = patch index modulo ``scenes``)."""
    rng = np.random.default_rng(seed)
    pv = rng.uniform(0, 0.6, (n, size, size, 4)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["PV"] = pv
        f["LU"] = (pv * 1.1 + 0.02).astype(np.float32)
        f["PAIR"] = (np.arange(n) % scenes).astype(np.int32)
    return path


# ---------------------------------------------------------------------------------- losses
def test_gan_losses_hand_computed():
    logits = tf.constant([[0.0], [np.log(3.0)]], tf.float32)
    assert float(cg.generator_gan_loss(logits)) == pytest.approx((np.log(2) + np.log(4 / 3)) / 2, rel=1e-6)
    real, fake = tf.constant([np.log(3.0)], tf.float32), tf.constant([0.0])
    # real: -log sigmoid(ln 3) = log(4/3); fake: -log(1 - sigmoid(0)) = log 2
    assert float(cg.discriminator_gan_loss(real, fake)) == pytest.approx(0.5 * (np.log(4 / 3) + np.log(2)), rel=1e-6)


def test_l1_and_binary_kl_hand_computed():
    assert float(cg.l1_loss(tf.constant([1.0, -1.0]), tf.constant([0.5, 1.0]))) == pytest.approx(1.25)
    p, q = tf.constant([0.8, 0.5]), tf.constant([0.4, 0.5])
    expected = (0.8 * np.log(2) + 0.2 * np.log(0.2 / 0.6) + 0.0) / 2
    assert float(cg.binary_kl(p, q)) == pytest.approx(expected, rel=1e-5)
    # clipping to [1e-6, 1 - 1e-6]: finite even for p = 1, q = 0
    eps = 1e-6
    kl = float(cg.binary_kl(tf.constant([1.0]), tf.constant([0.0])))
    assert kl == pytest.approx((1 - eps) * np.log((1 - eps) / eps) + eps * np.log(eps / (1 - eps)), rel=1e-4)
    assert float(cg.binary_kl(tf.constant([0.3]), tf.constant([0.3]))) == pytest.approx(0.0, abs=1e-7)


def test_r1_penalty_linear_discriminator():
    # D(x) = w · x per pixel; the mean logit over an H×W map has gradient w / (H W) at every pixel,
    # so the squared norm is H W |w|² / (H W)² = |w|² / (H W).
    w = np.array([1.0, 2.0, -1.0, 0.5], np.float32)
    disc = lambda x, training=True: tf.reduce_sum(x * w, axis=-1, keepdims=True)  # noqa: E731
    x = tf.random.normal((2, 3, 3, 4))
    real_logits, fake_logits, gp = cg.discriminate(disc, x, tf.zeros((1, 3, 3, 4)))
    assert real_logits.shape == (2, 3, 3, 1) and fake_logits.shape == (1, 3, 3, 1)
    assert np.allclose(real_logits.numpy(), disc(x).numpy()) and not np.any(fake_logits.numpy())
    assert float(gp) == pytest.approx(np.sum(w**2) / 9, rel=1e-5)
    assert float(cg.discriminate(disc, x, x, r1=False)[2]) == 0.0


def test_r1_penalty_is_per_sample_mean():
    # D(x) = Σ_c x_c² per pixel: gradient of sample i's mean logit is 2 x_i / (H W).
    x = np.random.default_rng(1).normal(size=(3, 2, 2, 4)).astype(np.float32)
    disc = lambda t, training=True: tf.reduce_sum(t * t, axis=-1, keepdims=True)  # noqa: E731
    _, _, gp = cg.discriminate(disc, tf.constant(x), tf.constant(x[:1]))
    expected = np.mean([np.sum((2 * xi / 4) ** 2) for xi in x])
    assert float(gp) == pytest.approx(expected, rel=1e-5)


def test_discriminator_sees_real_and_fake_in_one_batch():
    # With batch normalisation in training mode, separate calls would map a batch and the same batch
    # shifted by a constant to identical logits; one shared call keeps the shift visible.
    from pvl8da.models.da import build_discriminator

    disc = build_discriminator(df=4)
    real = tf.random.uniform((4, 32, 32, 4), 0.1, 0.4, seed=3)
    fake = real + 0.05
    real_logits, fake_logits, _ = cg.discriminate(disc, real, fake, r1=False)
    assert not np.allclose(real_logits.numpy(), fake_logits.numpy(), atol=1e-3)
    separate = disc(real, training=True).numpy(), disc(fake, training=True).numpy()
    assert np.abs(separate[0] - separate[1]).max() < np.abs(real_logits.numpy() - fake_logits.numpy()).max()


def test_d4_transform_is_the_dihedral_group_and_pairs_move_together():
    x = tf.constant(np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2))
    variants = [cg.d4_transform(x, tf.fill([2], k)).numpy() for k in range(8)]
    assert np.array_equal(variants[0], x.numpy())
    assert np.array_equal(variants[1][0, ..., 0], np.rot90(x.numpy()[0, ..., 0]))
    assert np.array_equal(variants[4][0, ..., 0], np.fliplr(x.numpy()[0, ..., 0]))
    assert len({v[0, ..., 0].tobytes() for v in variants}) == 8
    mixed = cg.d4_transform(x, tf.constant([0, 3])).numpy()
    assert np.array_equal(mixed[0], variants[0][0]) and np.array_equal(mixed[1], variants[3][1])
    # channels are transformed alike: a pair concatenated on channels stays aligned
    assert np.array_equal(mixed[1, ..., 1] - mixed[1, ..., 0], np.ones((3, 3)))


def test_compute_losses_hand_computed_with_linear_generators():
    config = cg.CycleGANConfig(batch_size=2)
    trainer = cg.CycleGANTrainer(config, lambda: tiny_networks(g_scale=2.0))
    rng = np.random.default_rng(0)
    pv = tf.constant(rng.uniform(0, 1, (2, 8, 8, 4)).astype(np.float32))
    lu = tf.constant(rng.uniform(0, 1, (2, 8, 8, 4)).astype(np.float32))
    out = {k: float(v) for k, v in trainer.compute_losses(pv, lu).items()}
    # G(x) = 2x, F(x) = x: |PV - G(PV)| = mean|PV|, F(LU) = LU, cycles: F(G(PV)) = 2 PV, G(F(LU)) = 2 LU.
    assert out["identity_G"] == pytest.approx(np.mean(np.abs(pv)), rel=1e-5)
    assert out["identity_F"] == pytest.approx(0.0, abs=1e-7)
    assert out["cycle"] == pytest.approx(np.mean(np.abs(pv)) + np.mean(np.abs(lu)), rel=1e-5)
    cloud = trainer.nets.cloud
    expected_seg = float(cg.binary_kl(cloud(pv), cloud(2 * pv)))
    assert out["segmentation_G"] == pytest.approx(expected_seg, rel=1e-5)
    assert out["segmentation_F"] == pytest.approx(0.0, abs=1e-6)
    assert out["loss_G"] == pytest.approx(out["gan_G"] + 5 * out["identity_G"] + 5 * out["cycle"] + out["segmentation_G"], rel=1e-5)
    assert out["loss_F"] == pytest.approx(out["gan_F"] + 5 * out["cycle"], rel=1e-5)
    assert out["loss_D_LU"] > 10 * out["gp_D_LU"] > 0


def test_ablation_weights_drop_terms():
    config = cg.CycleGANConfig(batch_size=2, identity_lambda=0, segmentation_consistency_lmbda=0, cycled_lambda=0,
                               gradient_penalty_mode="none")
    trainer = cg.CycleGANTrainer(config, lambda: tiny_networks(g_scale=2.0))
    x = tf.random.uniform((2, 8, 8, 4))
    out = {k: float(v) for k, v in trainer.compute_losses(x, x).items()}
    assert out["loss_G"] == pytest.approx(out["gan_G"]) and out["segmentation_G"] == 0.0 and out["gp_D_LU"] == 0.0


def test_bad_config_values():
    with pytest.raises(InputError, match="gradient_penalty_mode"):
        cg.CycleGANConfig(gradient_penalty_mode="wgan")
    with pytest.raises(InputError, match="normtype"):
        cg.CycleGANConfig(normtype="layernorm")


# ---------------------------------------------------------------------------------- training
def _weights(trainer):
    return [v.value.numpy() for k in ("gen_pv2lu", "gen_lu2pv", "disc_lu", "disc_pv") for v in getattr(trainer.nets, k).weights]


def _killed_at(trainer, monkeypatch, call: int) -> dict:
    """Make ``trainer.train_step`` raise KeyboardInterrupt at its ``call``-th call; returns the call counter."""
    calls = {"n": 0}
    original = trainer.train_step

    def step(*args):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer, "train_step", step)
    return calls


def test_fit_writes_outputs_and_resumes_after_interruption(tmp_path, monkeypatch):
    train, val = cg.split_by_scene(cg.load_pairs(write_pairs(tmp_path / "pairs.hdf5", n=24)), 1, 0)
    assert len(train) == len(val) == 12 and not set(train.pair) & set(val.pair)
    config = cg.CycleGANConfig(batch_size=4, epochs=2, suffix="t", summary_every=1)

    # uninterrupted reference run
    ref = cg.CycleGANTrainer(config, tiny_networks)
    ref_history = ref.fit(train, val, tmp_path / "ref")
    assert [r["epoch"] for r in ref_history] == [0, 1] and int(ref.step.numpy()) == 6
    assert all(0 <= r["val_agreement"] <= 1 for r in ref_history)

    # a run killed in the middle of its second epoch ...
    run = cg.CycleGANTrainer(config, tiny_networks)
    _killed_at(run, monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run.fit(train, val, tmp_path / "run")
    paths = cg.output_paths(tmp_path / "run", config)
    assert not paths["generator"].exists()
    assert tf.train.latest_checkpoint(str(paths["checkpoints"])).endswith("ckpt-1")

    # ... resumes from the epoch-1 checkpoint (not from scratch) and ends where the reference ended
    resumed = cg.CycleGANTrainer(config, tiny_networks)
    steps = _killed_at(resumed, monkeypatch, 0)
    history = resumed.fit(train, val, tmp_path / "run")
    assert steps["n"] == 3 and [r["epoch"] for r in history] == [0, 1]
    for a, b in zip(_weights(resumed), _weights(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    out = resumed.save_final(tmp_path / "run")
    weights = sorted(p.name for p in (tmp_path / "run").glob("*.weights.h5"))
    assert weights == ["discl8cycle_64_8_t.weights.h5", "discpvcycle_64_8_t.weights.h5",
                       "genl82pvcycle_64_8_t.weights.h5", "genpv2l8cycle_64_8_t.weights.h5"]
    assert out["generator"].name == "genpv2l8cycle_64_8_t.weights.h5"
    assert sorted(p.name for p in paths["epochs"].iterdir()) == ["epoch_001.weights.h5", "epoch_002.weights.h5"]
    assert any(paths["logs"].iterdir()) and paths["history"].is_file()


def _scripted_scores(monkeypatch, scores: list[float]) -> None:
    """Make successive validation agreements ``scores`` (a fresh run's first is the one without adaptation)."""
    queue = list(scores)
    monkeypatch.setattr(cg, "cloud_agreement", lambda *args, **kwargs: queue.pop(0))


def test_the_best_epoch_is_kept_and_resuming_keeps_the_best_so_far(tmp_path, monkeypatch):
    train, val = cg.split_by_scene(cg.load_pairs(write_pairs(tmp_path / "pairs.hdf5", n=16)), 1, 0)
    config = cg.CycleGANConfig(batch_size=4, epochs=3, suffix="b", lr=0.05)
    paths = cg.output_paths(tmp_path, config)
    _scripted_scores(monkeypatch, [0.0, 0.5, 0.9])
    first = cg.CycleGANTrainer(config, tiny_networks)
    _killed_at(first, monkeypatch, 5)  # killed during epoch 3, after epochs 1 (0.5) and 2 (0.9)
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, val, tmp_path)
    _scripted_scores(monkeypatch, [0.7])
    resumed = cg.CycleGANTrainer(config, tiny_networks)
    history = resumed.fit(train, val, tmp_path)
    assert [r["val_agreement"] for r in history] == [0.5, 0.9, 0.7] and int(resumed.best_epoch.numpy()) == 2
    resumed.save_final(tmp_path)
    epochs = [cg.epoch_weights(paths["epochs"], e).read_bytes() for e in (1, 2, 3)]
    assert len(set(epochs)) == 3 and paths["generator"].read_bytes() == epochs[1]


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    pairs = cg.load_pairs(write_pairs(tmp_path / "pairs.hdf5", n=8, scenes=1))
    config = cg.CycleGANConfig(batch_size=4, epochs=2, suffix="n", val_scenes=0)
    train, val = cg.split_by_scene(pairs, config.val_scenes, config.seed)
    trainer = cg.CycleGANTrainer(config, tiny_networks)
    history = trainer.fit(train, val, tmp_path)
    paths = trainer.save_final(tmp_path)
    assert val is None and np.isnan(history[-1]["val_agreement"])
    assert paths["generator"].read_bytes() == cg.epoch_weights(paths["epochs"], 2).read_bytes()


def test_too_few_pairs_to_hold_out_validation_scenes(tmp_path):
    data = write_pairs(tmp_path / "pairs.hdf5", n=8, scenes=2)
    with pytest.raises(InputError, match="holds 2 pair.*holding out 2 for validation.*at least 3.*--val-scenes 0"):
        cg.train_cyclegan(data, tmp_path / "out", cg.CycleGANConfig(batch_size=2, val_scenes=2), None,
                          networks_fn=tiny_networks)
    assert not (tmp_path / "out").exists()


def test_cloud_agreement_on_constructed_generators():
    from pvl8da.evaluation.selection import cloud_agreement, rank_correlation

    cloud = _linear("cloud", activation="sigmoid")
    cloud.layers[-1].set_weights([np.array([1.0, -2.0, 3.0, 0.5], np.float32).reshape(1, 1, 4, 1),
                                  np.zeros(1, np.float32)])
    x = np.random.default_rng(2).normal(0, 1, (5, 8, 8, 4)).astype(np.float32)
    identity = lambda t, training=False: t  # noqa: E731
    inverting = lambda t, training=False: -t  # noqa: E731 (sigmoid(-z) = 1 - sigmoid(z): every mask flips)
    assert cloud_agreement(cloud, identity, x, x, batch_size=2) == 1.0
    assert cloud_agreement(cloud, None, x, x) == 1.0
    assert cloud_agreement(cloud, inverting, x, x, batch_size=3) == 0.0
    half = x.copy()
    half[:, :4] *= -1  # the LU patches' masks differ from the PV ones on half of the pixels
    assert cloud_agreement(cloud, identity, x, half) == pytest.approx(0.5)
    assert cloud_agreement(cloud, inverting, x, half) == pytest.approx(0.5)
    assert rank_correlation([0.1, 0.3, 0.2, 0.4], [80, 90, 85, 95]) == 1.0
    assert rank_correlation([0.4, 0.3, 0.2], [80, 90, 95]) == -1.0
    assert np.isnan(rank_correlation([0.1, 0.1, 0.1], [1, 2, 3]))


def test_ema_generator_is_the_one_validated_and_the_schedule_decays():
    config = cg.CycleGANConfig(batch_size=4, epochs=4, ema_decay=0.9, lr_schedule="linear", lr=1.0)
    assert [config.learning_rate(e) for e in range(4)] == [1.0, 1.0, pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert cg.CycleGANConfig(lr=0.5).learning_rate(24) == 0.5
    trainer = cg.CycleGANTrainer(config, lambda: tiny_networks(g_scale=2.0))
    assert trainer.selected_generator is trainer.ema
    x = tf.random.uniform((4, 8, 8, 4), seed=1)
    before = trainer.ema.get_weights()
    trainer.train_step(x, x)
    raw, average = trainer.nets.gen_pv2lu.get_weights()[0], trainer.ema.get_weights()[0]
    decay = min(0.9, 1 / 10)  # warm-up at step 0
    np.testing.assert_allclose(average, decay * before[0] + (1 - decay) * raw, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="lr_schedule"):
        cg.CycleGANConfig(lr_schedule="cosine")


def test_train_cyclegan_bad_inputs_write_nothing(tmp_path):
    data = write_pairs(tmp_path / "pairs.hdf5", n=4)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="missing.weights.h5"):
        cg.train_cyclegan(data, out, cg.CycleGANConfig(batch_size=2, epochs=1), tmp_path / "missing.weights.h5")
    with pytest.raises(InputError, match="fewer than one batch"):
        cg.train_cyclegan(data, out, cg.CycleGANConfig(batch_size=4, epochs=1), None, networks_fn=tiny_networks)
    with pytest.raises(InputError, match="nope.hdf5"):
        cg.load_pairs(tmp_path / "nope.hdf5")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f["PV"] = np.zeros((0, 16, 16, 4), np.float32)
        f["LU"] = np.zeros((0, 16, 16, 4), np.float32)
    with pytest.raises(InputError, match="no patch"):
        cg.load_pairs(tmp_path / "empty.hdf5")
    assert not out.exists()
