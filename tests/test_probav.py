"""Proba-V L2A and Landsat-as-Proba-V readers: SM decoding, invalid mask, grid, times, windows, bad input."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from pvl8da.errors import InputError
from pvl8da.sensors.probav import (PV_BANDS, SM_PATH, LandsatAsProbaVProduct, ProbaVProduct, band_path, decode_sm,
                           encode_sm, mapping_from_transform, open_product, transform_from_mapping)

TRANSFORM = Affine(1 / 336, 0.0, 2.5, 0.0, -1 / 336, 45.0)


def write_pv(path: Path, shape=(40, 56), seed=0, bands=PV_BANDS, sm=True, attrs=True, invalid_box=None) -> Path:
    """A small Proba-V-layout product: random reflectance, SM with clouds, an invalid box (−1, no coverage)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        dn = rng.integers(0, 1200, size=shape + (4,)).astype(np.int16)
        cls = np.where(rng.random(shape) < 0.3, 3, 0)
        covered = np.ones(shape + (4,), bool)
        if invalid_box is not None:
            dn[invalid_box] = -1
            covered[invalid_box] = False
        for i, band in enumerate(PV_BANDS):
            if band in bands:
                ds = f.create_dataset(band_path(band), data=dn[..., i], chunks=True, compression="gzip")
                ds.attrs["SCALE"] = np.float32(2000)
                ds.attrs["OFFSET"] = np.float32(0)
                ds.attrs["MAPPING"] = mapping_from_transform(TRANSFORM)
        if sm:
            f.create_dataset(SM_PATH, data=encode_sm(cls, covered=covered), chunks=True, compression="gzip")
        if attrs:
            f.attrs["OBSERVATION_START_DATE"] = np.array([b"2015-07-04"])
            f.attrs["OBSERVATION_START_TIME"] = np.array([b"10:15:30"])
            f.attrs["OBSERVATION_END_DATE"] = np.array([b"2015-07-04"])
            f.attrs["OBSERVATION_END_TIME"] = np.array([b"10:15:59"])
    return path


def test_sm_decoding_bits():
    sm = np.array([0b0000_0000_0000, 0b0001, 0b0010, 0b0011, 0b0100, 0b1000,
                   0b1111_1111_0000, 0b1000_0001_0000, 0b0001_1000_0000], dtype=np.uint16)
    s = decode_sm(sm)
    assert s.clear.tolist() == [1, 0, 0, 0, 0, 1, 1, 1, 1]
    assert s.shadow.tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert s.undefined.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert s.cloud.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert s.snow.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert s.land.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert s.good[6].all() and s.covered[6].all()
    # bit 4 = good SWIR, bit 11 = coverage BLUE (PV_BANDS order BLUE, RED, NIR, SWIR)
    assert s.good[7].tolist() == [False, False, False, True] and s.covered[7].tolist() == [True, False, False, False]
    assert s.good[8].tolist() == [True, False, False, False] and s.covered[8].tolist() == [False, False, False, True]


def test_sm_encode_decode_round_trip():
    rng = np.random.default_rng(1)
    cls = rng.integers(0, 5, (9, 7))
    land, good, covered = rng.random((9, 7)) < 0.5, rng.random((9, 7, 4)) < 0.5, rng.random((9, 7, 4)) < 0.5
    s = decode_sm(encode_sm(cls, land, good, covered))
    assert (s.cloud == (cls == 3)).all() and (s.land == land).all()
    assert (s.good == good).all() and (s.covered == covered).all()


def test_mapping_transform_round_trip():
    t = Affine(0.00297619047619, 0.0, -1.435129857660456, 0.0, -0.00297619047619, 78.35289225354892)
    assert transform_from_mapping(mapping_from_transform(t)).almost_equals(t, precision=1e-15)
    assert transform_from_mapping(mapping_from_transform(TRANSFORM)) == TRANSFORM


def test_read_toa_window_sm_invalid_and_times(tmp_path):
    path = write_pv(tmp_path / "PROBAV_L2A_20160101_120000_1_333M_V101.HDF5",
                    invalid_box=(slice(5, 9), slice(10, 20)))
    with ProbaVProduct(path) as p:
        assert p.shape == (40, 56) and p.crs == "EPSG:4326" and p.transform == TRANSFORM
        toa = p.read_toa()
        assert toa.shape == (40, 56, 4) and toa.dtype == np.float32
        dn = p.read_dn("NIR")
        np.testing.assert_allclose(toa[..., 2], dn / 2000.0, rtol=1e-6)
        assert (p.read_toa(Window(10, 3, 20, 7)) == toa[3:10, 10:30]).all()
        assert (p.read_toa((slice(3, 10), slice(10, 30))) == toa[3:10, 10:30]).all()
        assert p.window_transform(Window(10, 3, 20, 7)) == TRANSFORM @ Affine.translation(10, 3)
        invalid = p.invalid()
        assert invalid[5:9, 10:20].all() and invalid.sum() == 40
        assert (p.cloud_mask_sm() == p.status().cloud).all() and p.cloud_mask_sm().any()
        # attributes win over the file name
        assert p.start_time == datetime(2015, 7, 4, 10, 15, 30) and p.end_time == datetime(2015, 7, 4, 10, 15, 59)
    path = write_pv(tmp_path / "PROBAV_L2A_20160101_120000_1_333M_V101.HDF5", attrs=False)
    with ProbaVProduct(path) as p:
        assert p.start_time == datetime(2016, 1, 1, 12, 0, 0)


def test_write_dn_and_new_dataset(tmp_path):
    path = write_pv(tmp_path / "p.HDF5")
    with ProbaVProduct(path, "r+") as p:
        toa = np.full((4, 6), 0.5, np.float32)
        invalid = np.zeros((4, 6), bool)
        invalid[0, 0] = True
        p.write_dn("RED", p.dn_from_toa("RED", toa, invalid), Window(0, 0, 6, 4))
        p.create_dataset("CM_TEST")
        p.write("CM_TEST", np.ones((4, 6), np.float32), (slice(0, 4), slice(0, 6)))
    with ProbaVProduct(path) as p:
        assert p.read_dn("RED", Window(0, 0, 6, 4))[0, 0] == -1 and p.read_dn("RED")[1, 1] == 1000
        cm = p.read("CM_TEST")
        assert cm[0, 0] == 1 and cm[10, 10] == -1
        assert transform_from_mapping(p.file["CM_TEST"].attrs["MAPPING"]) == TRANSFORM


def test_golden_probav_product(reference_dir):
    path = reference_dir / "golden/inference/PROBAV_L2A_20150704_101530_2_333M_V101.HDF5"
    with open_product(path) as p:
        assert isinstance(p, ProbaVProduct) and p.shape == (800, 800)
        assert p.transform.c == 2.5 and p.transform.f == 45.0 and p.transform.a == pytest.approx(1 / 336)
        assert p.start_time == datetime(2015, 7, 4, 10, 15, 30)
        invalid = p.invalid()
        assert invalid.sum() == 51711
        assert (p.read_dn("BLUE")[invalid] == -1).all()


def test_landsat_as_probav_product(reference_dir):
    path = reference_dir / "golden/convert/LC80010112014080LGN00_333M.reference.HDF5"
    with open_product(path) as p:
        assert isinstance(p, LandsatAsProbaVProduct) and p.shape == (75, 362)
        invalid = p.invalid()
        dn = p.read_dn_all()
        assert ((dn <= -1000).any(-1) == invalid).all() and invalid.any() and not invalid.all()
        clouds = p.read_clouds()
        assert clouds.dtype == np.float32 and clouds.max() <= 1 and (clouds[~invalid] >= 0).mean() > 0.95
        assert p.start_time == datetime(2016, 5, 20, 15, 7, 21)
        assert p.transform.c == pytest.approx(-1.435129857660456, abs=1e-12)


@pytest.mark.parametrize("kwargs, missing", [({"sm": False}, SM_PATH), ({"bands": PV_BANDS[:3]}, band_path("SWIR"))])
def test_bad_products_are_named(tmp_path, kwargs, missing):
    path = write_pv(tmp_path / "bad.HDF5", **kwargs)
    with pytest.raises(InputError, match=f"{path}.*{missing}"):
        ProbaVProduct(path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.HDF5"
    path.write_text("not hdf5")
    with pytest.raises(InputError, match="x.HDF5: not an HDF5 file"):
        ProbaVProduct(path)
    with pytest.raises(InputError, match="file not found"):
        ProbaVProduct(tmp_path / "none.HDF5")


def test_chunk_cache_spans_a_row_of_tiles_and_windows_write_through_it(tmp_path):
    path = write_pv(tmp_path / "p.HDF5", shape=(600, 700))
    data = np.random.default_rng(1).uniform(0, 1, (600, 700)).astype(np.float32)
    with ProbaVProduct(path, "r+") as p:
        p.set_chunk_cache(100)
        ds = p.create_dataset("CM_TEST")
        p.create_dataset("DN_TEST", np.int16, -1)
        assert p.dataset("CM_TEST") is ds and ds.chunks == (256, 256)
        # 100 rows at any offset touch at most 2 chunk rows; 700 columns are 3 chunk columns; float32
        assert ds.id.get_access_plist().get_chunk_cache()[1] == 2 * 256 * 768 * 4
        assert p.dataset("DN_TEST").id.get_access_plist().get_chunk_cache()[1] == 2 * 256 * 768 * 2
        for r0 in range(0, 600, 100):          # windows straddling the 256-pixel chunks
            for c0 in range(0, 700, 100):
                p.write("CM_TEST", data[r0:r0 + 100, c0:c0 + 100], (slice(r0, r0 + 100), slice(c0, c0 + 100)))
        del ds
        p.set_chunk_cache(None)
        assert p.dataset("CM_TEST").id.get_access_plist().get_chunk_cache()[1] == 2**20
    with ProbaVProduct(path) as p:
        assert np.array_equal(p.read("CM_TEST"), data)


def test_both_writers_store_the_toa_bands_alike(tmp_path):
    """Proba-V products (synthetic) and Landsat-as-Proba-V products (ConvertPV) go through write_toa_bands."""
    from pvl8da.conversion import convert_scene
    from pvl8da.synthetic import write_landsat8_scene, write_probav_product

    products = [write_probav_product(tmp_path / "pv", shape=(300, 40), seed=1),
                convert_scene(write_landsat8_scene(tmp_path / "l8", shape=(96, 96), seed=2), tmp_path / "out",
                              progress=False)]
    layouts = []
    for path in products:
        with h5py.File(path, "r") as f:
            ds = [f[band_path(b)] for b in PV_BANDS]
            layouts.append({(d.dtype, d.compression, d.compression_opts, d.shuffle, frozenset(d.attrs)) for d in ds})
            assert all(d.chunks == (min(256, d.shape[0]), min(256, d.shape[1])) for d in ds)
    expected = (np.dtype(np.int16), "gzip", 1, True, frozenset({"SCALE", "OFFSET", "MAPPING"}))
    assert layouts[0] == layouts[1] == {expected}
