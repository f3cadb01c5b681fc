"""Tiled inference (SPEC §6) with the published weights: golden InferenceDA, tile-size invariance, COG, untouched
input; the same paths with self-made weights, and bad input, are in ``test_inference_selfmade.py``."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from pvl8da.inference.products import HALO, Tiling, fitted_tile, infer_clouds, infer_da, read_padded
from pvl8da.sensors.probav import PV_BANDS, ProbaVProduct, band_path
from test_probav import write_pv

GOLDEN = "golden/inference/PROBAV_L2A_20150704_101530_2_333M_V101.HDF5"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def weights(reference_dir):
    return {"cloud_detection_weights": reference_dir / "weights/cloud_detection_l8.hdf5",
            "dagans_weights": reference_dir / "weights/full.hdf5"}


@pytest.fixture(scope="module")
def golden_run(reference_dir, weights, tmp_path_factory):
    """InferenceDA with the published weights on the golden 800×800 product, 256-pixel tiles."""
    src = reference_dir / GOLDEN
    digest = sha256(src)
    dest = tmp_path_factory.mktemp("golden") / "adapted.HDF5"
    outputs = infer_da(src, dest, **weights, tiling=Tiling(tile=256))
    assert sha256(src) == digest
    return src, outputs


def read_result(path: Path, cm_name="CM_PVDAGANS"):
    with h5py.File(path, "r") as f:
        dn = np.stack([f[band_path(b)][:] for b in PV_BANDS], axis=-1)
        return dn, f[cm_name][:]


def assert_cog_matches(src, outputs) -> None:
    """The COG is the product's mask on its grid: 0/1 at probability 0.5, 255 where the product is invalid."""
    with ProbaVProduct(src) as pv:
        transform = pv.transform
    _, cm = read_result(outputs.product)
    with rasterio.open(outputs.cog) as cog:
        assert cog.crs.to_epsg() == 4326 and cog.transform.almost_equals(transform, precision=1e-12)
        assert cog.dtypes[0] == "uint8" and cog.nodata == 255 and cog.shape == cm.shape
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        mask = cog.read(1)
    assert ((mask == 255) == (cm < 0)).all() and ((mask == 1) == (cm >= 0.5)).all()


def assert_matches_golden(src: Path, product: Path) -> None:
    """``product`` (InferenceDA on the golden ``src``) within the original's tolerances (reference/README.md)."""
    ref = np.load(f"{src}.reference.npz")
    dn, cm = read_result(product)
    assert ((cm < 0) == (ref["cm_pvdagans"] < 0)).all() and ((dn < 0) == (ref["adapted_toa_dn"] < 0)).all()
    valid = (cm >= 0) & (ref["cm_pvdagans"] >= 0)
    diff = np.abs(cm - ref["cm_pvdagans"])[valid]
    assert np.percentile(diff, 99.9) <= 0.01 and diff.max() <= 0.05
    assert ((cm >= 0.5) == (ref["cm_pvdagans"] >= 0.5))[valid].mean() >= 0.999
    assert np.abs(dn.astype(int) - ref["adapted_toa_dn"])[valid].mean() <= 1
    with ProbaVProduct(src) as p:
        invalid = p.invalid()
    assert (cm[invalid] == -1).all() and (dn[invalid] == -1).all()


def test_golden_inference(golden_run):
    src, outputs = golden_run
    assert_matches_golden(src, outputs.product)


def test_output_is_a_copy_with_cog_and_quicklook(golden_run):
    src, outputs = golden_run
    with h5py.File(src, "r") as a, h5py.File(outputs.product, "r") as b:
        assert dict(a.attrs).keys() <= dict(b.attrs).keys()
        assert np.array_equal(a["LEVEL2A/QUALITY/SM"][:], b["LEVEL2A/QUALITY/SM"][:])
        assert np.array_equal(a[band_path("RED")].attrs["MAPPING"], b[band_path("RED")].attrs["MAPPING"])
        assert not np.array_equal(a[band_path("RED")][:], b[band_path("RED")][:])
    assert_cog_matches(src, outputs)
    assert outputs.cog.name == "adapted_clouds.tif" and outputs.quicklook.stat().st_size > 10_000


def test_tile_size_does_not_matter(golden_run, weights, tmp_path):
    src, outputs = golden_run
    big = infer_da(src, tmp_path / "big.HDF5", **weights, tiling=Tiling(tile=2048), quicklook=False)
    dn_small, cm_small = read_result(outputs.product)
    dn_big, cm_big = read_result(big.product)
    assert np.abs(cm_small - cm_big).max() <= 1e-4
    assert np.abs(dn_small.astype(int) - dn_big).max() <= 1


def test_predict_window_matches_the_written_product(golden_run, weights):
    """EvaluateDA's in-memory prediction scores exactly what InferenceDA writes."""
    from pvl8da.evaluation.da import predict_product_window
    from pvl8da.inference.products import TilePredictor, load_models

    src, outputs = golden_run
    window = (slice(100, 420), slice(230, 530))  # not on the 4-pixel grid, and without its context
    unet, generator = load_models(weights["cloud_detection_weights"], weights["dagans_weights"])
    with ProbaVProduct(src) as pv:
        invalid = pv.invalid(window)
        scale, offset = zip(*(pv.scale_offset(b) for b in PV_BANDS))
        clouds = predict_product_window(pv, window, TilePredictor(unet, generator, Tiling(tile=128), scale, offset))
    written_cm = read_result(outputs.product)[1][window]
    valid = ~invalid
    assert valid.mean() > 0.5
    assert np.abs(clouds[valid] - written_cm[valid]).max() <= 1e-4


def test_read_padded_reflects_and_aligns():
    image = np.arange(10 * 9, dtype=np.float32).reshape(10, 9)
    block = read_padded(lambda r, c: image[r, c], image.shape, 8, 8, Tiling(tile=8, halo=4))
    assert block.shape == (16, 16)
    padded = np.pad(image, 4, mode="reflect")
    assert np.array_equal(block[:6, :5], padded[8:14, 8:13])


@pytest.mark.parametrize("shape, max_tile, expected", [((3000, 3000), 640, 600), ((10000, 10000), 1024, 1000),
                                                       ((3000, 800), 640, 432), ((8, 8), 640, 8)])
def test_fitted_tile_feeds_the_fewest_padded_pixels(shape, max_tile, expected):
    def padded_pixels(t):
        return -(-shape[0] // t) * -(-shape[1] // t) * (t + 2 * HALO) ** 2

    tile = fitted_tile(shape, max_tile)
    assert tile == expected and tile % 4 == 0 and tile <= max_tile
    assert all(padded_pixels(tile) <= padded_pixels(t) for t in range(4, max_tile + 1, 4))
    assert padded_pixels(tile) < padded_pixels(512) or max(shape) < 512


def test_inference_process_runs_one_inter_op_thread():
    code = ("from pvl8da.inference.products import single_inter_op_thread; single_inter_op_thread(); "
            "import tensorflow as tf; tf.constant(1.0) + 1.0; "
            "print(tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    assert out.split()[-1] == "1"


def test_no_adaptation_and_landsat_clouds(tmp_path, weights, reference_dir):
    src = write_pv(tmp_path / "pv.HDF5", shape=(40, 52), invalid_box=(slice(0, 5), slice(0, 52)))
    out = infer_da(src, tmp_path / "raw.HDF5", weights["cloud_detection_weights"], None, adaptation=False)
    with h5py.File(src, "r") as a, h5py.File(out.product, "r") as b:
        assert np.array_equal(a[band_path("NIR")][:], b[band_path("NIR")][:])
        cm = b["CM_UNET"][:]
    assert (cm[:5] == -1).all() and ((cm[5:] >= 0) & (cm[5:] <= 1)).all()
    landsat = reference_dir / "golden/convert/LC80010112014080LGN00_333M.reference.HDF5"
    res = infer_clouds(landsat, tmp_path / "l8.HDF5", weights["cloud_detection_weights"])
    with h5py.File(landsat, "r") as a, h5py.File(res.product, "r") as b:
        invalid = np.stack([a[band_path(x)][:] <= -1000 for x in PV_BANDS]).any(0)
        cm = b["CM_UNET"][:]
        assert np.array_equal(a["CM_RESAMPLED"][:], b["CM_RESAMPLED"][:])
    assert ((cm == -1) == invalid).all() and res.cog.is_file()


def test_tiles_without_valid_pixels_skip_the_networks():
    from pvl8da.inference.products import _predict_valid_tiles

    seen = []

    def predictor(x):
        seen.append(len(x))
        return x[..., :4] + 1.0, x[..., 0] + 2.0

    x = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 5)).astype(np.float32)
    x[..., 4] = 0.0
    x[1, ..., 4] = 1.0          # tile 1: nothing valid
    x[2, :4, :, 4] = 1.0        # tile 2: half valid, still predicted
    adapted, clouds = _predict_valid_tiles(predictor, x)
    assert seen == [2]
    assert np.array_equal(adapted[[0, 2]], x[[0, 2], ..., :4] + 1.0) and not adapted[1].any()
    assert np.array_equal(clouds[[0, 2]], x[[0, 2], ..., 0] + 2.0) and not clouds[1].any()
    x[1, ..., 4] = 0.0
    _predict_valid_tiles(predictor, x)
    assert seen == [2, 3]


def test_quicklook_samples_gathered_tile_by_tile_equal_the_decimated_image():
    from pvl8da.plots.inference import FALSE_COLOUR, QuicklookSamples

    rng = np.random.default_rng(2)
    shape = (2500, 1300)
    toa, adapted = rng.uniform(0, 1, shape + (4,)), rng.uniform(0, 1, shape + (4,))
    clouds, invalid = rng.uniform(0, 1, shape), rng.uniform(0, 1, shape) > 0.8
    samples = QuicklookSamples(shape)
    assert samples.step == 5  # 2500 / MAX_SIDE, rounded up
    for r0 in range(0, shape[0], 700):
        for c0 in range(0, shape[1], 700):
            block = (slice(r0, r0 + 700), slice(c0, c0 + 700))
            samples.add(r0, c0, toa[block], adapted[block], clouds[block], invalid[block])
    assert np.array_equal(samples.invalid, invalid[::5, ::5])
    assert np.array_equal(samples.clouds, clouds[::5, ::5].astype(np.float32))
    assert np.array_equal(samples.before, toa[::5, ::5][..., FALSE_COLOUR].astype(np.float32))
    assert np.array_equal(samples.after, adapted[::5, ::5][..., FALSE_COLOUR].astype(np.float32))
