"""The one tiler (pvl8da.inference.tiling): equal to whole-image prediction for any channel count, alignment,
edge policy, window and batch, with an FCD network as with plain filters."""
from __future__ import annotations

import numpy as np
import pytest

from pvl8da.errors import InputError
from pvl8da.inference.tiling import Tiling, predict_tiled, tiles


def box3(x: np.ndarray) -> tuple[np.ndarray]:
    """(B, h, w, C) → the 3 × 3 box filter of every band (zero outside), summed over bands: a halo of 1 suffices."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    box = sum(padded[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)) / 9
    return (box.sum(axis=-1),)


def reader(image: np.ndarray):
    return lambda rows, cols: image[rows, cols]


@pytest.mark.parametrize("edge", ["reflect", "inside"])
@pytest.mark.parametrize("channels, align, batch", [(4, 4, 1), (10, 32, 3), (1, 8, 2)])
def test_tiles_equal_one_block(edge, channels, align, batch):
    """Small tiles (several batches) equal one block covering the image, for 1, 4 and 10 channels."""
    image = np.random.default_rng(channels).random((150, 97, channels)).astype(np.float32)
    small = predict_tiled(box3, reader(image), image.shape[:2], Tiling(32, align, batch, align, edge))[0]
    whole = predict_tiled(box3, reader(image), image.shape[:2], Tiling(256, align, 1, align, edge))[0]
    assert small.shape == image.shape[:2] and np.abs(small - whole).max() <= 1e-5


def test_inside_blocks_see_the_image_edge_as_whole_image_prediction():
    image = np.random.default_rng(0).random((96, 64, 10)).astype(np.float32)
    tiled = predict_tiled(box3, reader(image), image.shape[:2], Tiling(16, 8, 2, 8, "inside"))[0]
    assert np.abs(tiled - box3(image[None])[0][0]).max() <= 1e-5


def test_window_equals_the_whole_image_prediction_cropped():
    image = np.random.default_rng(1).random((90, 70, 4)).astype(np.float32)
    tiling = Tiling(tile=16, halo=4)
    window = (slice(13, 61), slice(6, 67))  # off the 4-pixel grid
    whole = predict_tiled(box3, reader(image), image.shape[:2], tiling)[0]
    part = predict_tiled(box3, reader(image), image.shape[:2], tiling, window)[0]
    assert np.array_equal(part, whole[window])
    assert all(t.r0 % 4 == 0 and t.c0 % 4 == 0 for t in tiles(image.shape[:2], tiling, window))


def test_fixed_shape_blocks():
    image = np.zeros((50, 37, 3), np.float32)
    shapes = set()

    def record(x):
        shapes.add(x.shape[1:])
        return (x[..., 0],)

    for edge in ("reflect", "inside"):
        predict_tiled(record, reader(image), image.shape[:2], Tiling(8, 4, 3, 4, edge))
    assert shapes == {(16, 16, 3)}


@pytest.mark.parametrize("kwargs", [dict(tile=30, align=4), dict(tile=64, halo=8, align=32), dict(edge="clip"),
                                    dict(batch=0)])
def test_bad_tiling(kwargs):
    with pytest.raises(InputError, match="tiling"):
        Tiling(**kwargs)


def test_fcd_unet_tiled_equals_whole_scene():
    """The FCD+ U-Net (10 bands, downsampling 32) through FCD's whole-scene prediction: 128-pixel tiles equal
    one whole-scene block (as 256 vs 2048 tiles do for InferenceDA) once the halo spans the network's receptive
    field (192 px for this small encoder)."""
    from pvl8da.inference.fcd_tiling import predict_tiled as fcd_predict_tiled
    from pvl8da.models.fcd import build_unet
    from pvl8da.training.fcd_unet import cloud_probability

    model = build_unet(width=8, blocks=(1, 1, 1, 1))
    scene = np.random.default_rng(2).uniform(-1, 1, (640, 640, 10)).astype(np.float32)

    def read(w):
        return scene[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width]

    def fn(x):
        return cloud_probability(model, x)[0]

    tiled = fcd_predict_tiled(fn, read, scene.shape[:2], tile=128, halo=192, multiple=32)
    whole = fcd_predict_tiled(fn, read, scene.shape[:2], tile=2048, halo=192, multiple=32)
    assert np.abs(whole - fn(scene[None])).max() <= 1e-6
    assert np.abs(tiled - whole).max() <= 1e-4
