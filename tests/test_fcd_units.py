"""FCD helpers: threshold search, split, scores, learning-rate schedule, tiled prediction, scaling."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from pvl8da.errors import InputError
from pvl8da.evaluation.metrics import Confusion, best_threshold
from pvl8da.evaluation.metrics import class_scores as scores
from pvl8da.datasets.biome_patches import split_counts, split_scenes
from pvl8da.datasets.biome_scenes import SceneRef, scale_dn
from pvl8da.inference.fcd_tiling import predict_tiled
from pvl8da.training.fcd_gan import linear_decay
from pvl8da.training.fcd_unet import kept_patches


def _f1(pred, truth):
    tp = np.sum(pred & truth)
    return 2 * tp / (np.sum(pred) + np.sum(truth))


def test_threshold_search_picks_f1_maximum():
    values = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    truth = np.array([1, 1, 0, 1, 1, 0, 0, 1, 0], bool)
    t, f1 = best_threshold(values, truth)
    # 5 cloud pixels; >=0.8: 4/7, >=0.6: 6/9, >=0.5: 8/10, >=0.2: 10/13, all: 10/14 -> maximum at 0.5
    assert t == pytest.approx(0.5)
    assert f1 == pytest.approx(0.8)
    brute = max((_f1(values >= c, truth), c) for c in values)
    assert (f1, t) == pytest.approx(brute)


def test_threshold_search_ties_and_random():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 20, 500) / 20.0  # many ties
    truth = rng.random(500) < values
    t, f1 = best_threshold(values, truth)
    assert f1 == pytest.approx(max(_f1(values >= c, truth) for c in np.unique(values)))
    assert _f1(values >= t, truth) == pytest.approx(f1)


def test_threshold_search_without_cloud():
    with pytest.raises(InputError, match="no cloud"):
        best_threshold(np.ones(4), np.zeros(4, bool))


def test_split_counts():
    assert split_counts(12) == (6, 2, 4)
    assert split_counts(24) == (12, 4, 8)
    assert split_counts(3) == (1, 1, 1)
    assert split_counts(4) == (2, 1, 1)
    assert sum(split_counts(7)) == 7 and min(split_counts(7)) >= 1


def test_split_reproducible_per_biome():
    refs = [SceneRef(b, f"{b}{i:02d}", Path(f"/x/{b}/{b}{i:02d}")) for b in ("A", "B") for i in range(12)]
    a, b = split_scenes(refs, seed=7), split_scenes(list(reversed(refs)), seed=7)
    assert a == b
    assert split_scenes(refs, seed=8) != a
    for biome in ("A", "B"):
        got = [a[r.scene_id] for r in refs if r.biome == biome]
        assert (got.count("train"), got.count("val"), got.count("test")) == (6, 2, 4)


def test_scores_per_class():
    s = scores(Confusion(tp=3, fp=1, fn=2, tn=4))
    assert s["accuracy"] == pytest.approx(0.7)
    assert s["f1_cloud"] == pytest.approx(6 / 9)
    assert s["f1_clear"] == pytest.approx(8 / 11)
    assert s["iou_cloud"] == pytest.approx(0.5)
    assert s["iou_clear"] == pytest.approx(4 / 7)
    assert s["f1_mean"] == pytest.approx((6 / 9 + 8 / 11) / 2)


def test_linear_decay():
    assert linear_decay(0, 100, 50, 1e-4) == 1e-4
    assert linear_decay(49, 100, 50, 1e-4) == 1e-4
    assert linear_decay(75, 100, 50, 1e-4) == pytest.approx(5e-5)
    assert linear_decay(100, 100, 50, 1e-4) == 0.0


def test_kept_patches():
    k = kept_patches(1000, 0.01, seed=1)
    assert len(k) == 10 and np.array_equal(k, kept_patches(1000, 0.01, seed=1))
    assert len(kept_patches(5, 0.01, seed=1)) == 1
    with pytest.raises(InputError):
        kept_patches(5, 0.0, seed=1)


def test_predict_tiled_matches_whole_image():
    rng = np.random.default_rng(0)
    image = rng.random((72, 52, 2)).astype(np.float32)

    def fn(x):  # 3x3 box filter of band 0 (halo 1 suffices) times band 1
        a = np.pad(x[0, ..., 0], 1, mode="edge")
        box = sum(a[i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)) / 9
        return box * x[0, ..., 1]

    def read(w: Window):
        return image[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width]

    whole = fn(image[None])
    tiled = predict_tiled(fn, read, image.shape[:2], tile=16, halo=4, multiple=4)
    assert np.allclose(tiled, whole, atol=1e-6)


def test_scale_dn_fill():
    dn = np.array([[[0, 0], [65535, 32768], [0, 100]]], np.uint16)
    x = scale_dn(dn)
    assert np.all(x[0, 0] == -1) and np.all(x[0, 2] == -1)
    assert x[0, 1, 0] == pytest.approx(1.0) and x[0, 1, 1] == pytest.approx(0.0, abs=1e-4)
