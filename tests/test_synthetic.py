"""Synthetic scenes: reproducible, georeferenced in both hemispheres, consistent across sensors."""
import datetime as dt

import h5py
import numpy as np
import rasterio

from pvl8da.conversion import convert_scene
from pvl8da.sensors.landsat8 import open_scene
from pvl8da.sensors.probav import PV_BANDS, transform_from_mapping
from pvl8da.synthetic import PV_GAIN, write_biome_dataset, write_landsat8_scene, write_probav_product

WHEN = dt.datetime(2016, 7, 1, 10, 30, tzinfo=dt.timezone.utc)


def test_same_seed_same_scene(tmp_path):
    a = write_landsat8_scene(tmp_path / "a", shape=(64, 64), seed=4, with_pan=False)
    b = write_landsat8_scene(tmp_path / "b", shape=(64, 64), seed=4, with_pan=False)
    c = write_landsat8_scene(tmp_path / "c", shape=(64, 64), seed=5, with_pan=False)
    sa, sb, sc = (open_scene(p) for p in (a, b, c))
    np.testing.assert_array_equal(sa.read_dn(5), sb.read_dn(5))
    assert not np.array_equal(sa.read_dn(5), sc.read_dn(5))


def test_pan_band_has_twice_the_size(tmp_path):
    scene = open_scene(write_landsat8_scene(tmp_path, shape=(40, 50), seed=1))
    assert scene.read_dn(8).shape == (80, 100)
    with rasterio.open(scene.band_path(8)) as src:
        assert src.transform.a == 15.0


def test_southern_hemisphere_and_surfaces(tmp_path):
    path = write_landsat8_scene(tmp_path, shape=(200, 200), seed=9, lat=-70.0, lon=-60.0, biome="SnowIce",
                                collection=2, with_biome_mask=True, cloud_cover=0.3)
    scene = open_scene(path, "biome")
    assert scene.crs.to_epsg() == 32721
    assert 0 < scene.transform.f < 10_000_000
    assert scene.mtl.get("projection", "CORNER_UL_LAT_PRODUCT") < -69
    mask = scene.cloud_mask()
    for value in (0, 128, 192, 255):
        assert (mask == value).any(), value
    valid = mask != 0
    snow = (scene.toa(3) > 0.6) & (scene.toa(6) < 0.2) & (mask == 128)
    assert snow[valid].mean() > 0.1
    assert 250 < np.median(scene.brightness_temperature(10)[valid]) < 300


def test_biome_dataset_layout(tmp_path):
    root = write_biome_dataset(tmp_path, n_biomes=2, scenes_per_biome=2, shape=(48, 48), seed=1)
    scenes = sorted(root.glob("*/*"))
    assert len(scenes) == 4 and len({s.parent.name for s in scenes}) == 2
    for s in scenes:
        assert open_scene(s, "biome").cloud_mask().shape == (48, 48)


def _pv(path):
    with h5py.File(path, "r") as f:
        dn = np.stack([f[f"LEVEL2A/RADIOMETRY/{b}/TOA"][()] for b in PV_BANDS])
        sm = f["LEVEL2A/QUALITY/SM"][()] if "LEVEL2A/QUALITY/SM" in f else None
        return dn, sm, transform_from_mapping(
            f["LEVEL2A/RADIOMETRY/BLUE/TOA"].attrs["MAPPING"]), dict(f.attrs)


def test_probav_product_layout(tmp_path):
    path = write_probav_product(tmp_path, shape=(120, 100), seed=3, acquired=WHEN, with_truth=True)
    assert path.name == "PROBAV_L2A_20160701_103000_2_333M_V101.HDF5"
    dn, sm, transform, attrs = _pv(path)
    assert dn.dtype == np.int16 and dn.shape == (4, 120, 100)
    invalid = (dn < 0).any(axis=0)
    coverage = (sm >> 8) & 0xF
    np.testing.assert_array_equal(invalid, coverage != 0xF)
    assert 0 < invalid.mean() < 0.3
    assert attrs["OBSERVATION_START_DATE"][0] == b"2016-07-01"
    assert transform.a == transform_from_mapping([b"", b"", b"", b"0", b"0", b"0.00297619047619",
                                                  b"0.00297619047619"]).a
    with rasterio.open(path.with_name(path.stem + "_truth.tif")) as src:
        truth = src.read(1)
        assert src.crs.to_epsg() == 4326 and src.transform.almost_equals(transform)
    assert np.all(truth[invalid] == 255) and set(np.unique(truth)) == {0, 1, 255}


def test_landsat_and_probav_of_one_world_agree(tmp_path):
    """Converted Landsat and a simultaneous Proba-V product show the same clouds; PV radiometry is shifted."""
    scene = write_landsat8_scene(tmp_path / "l8", shape=(600, 600), seed=21, lat=40.0, lon=-3.0, acquired=WHEN,
                                 with_biome_mask=True, with_pan=False, cloud_cover=0.4)
    lu = convert_scene(scene, tmp_path / "lu", "333M", "biome", progress=False)
    lu_dn, _, lu_transform, _ = _pv(lu)
    with h5py.File(lu, "r") as f:
        lu_clouds = f["CM_RESAMPLED"][()]
    height, width = lu_dn.shape[1:]
    centre_lon = lu_transform.c + lu_transform.a * width / 2
    centre_lat = lu_transform.f + lu_transform.e * height / 2
    for shift in (True, False):
        pv = write_probav_product(tmp_path / f"pv{shift}", shape=(height + 20, width + 20), seed=21, lat=40.0,
                                  lon=-3.0, acquired=WHEN, cloud_cover=0.4, domain_shift=shift, with_truth=True)
        pv_dn, _, pv_transform, _ = _pv(pv)
        col0 = int(round((lu_transform.c - pv_transform.c) / pv_transform.a))
        row0 = int(round((pv_transform.f - lu_transform.f) / pv_transform.a))
        assert abs(centre_lon + 3.0) < 0.1 and abs(centre_lat - 40.0) < 0.1
        pv_dn = pv_dn[:, row0:row0 + height, col0:col0 + width]
        with rasterio.open(pv.with_name(pv.stem + "_truth.tif")) as src:
            truth = src.read(1)[row0:row0 + height, col0:col0 + width]
        both = (lu_clouds >= 0) & (truth != 255) & (pv_dn >= 0).all(axis=0)
        assert both.mean() > 0.4
        assert np.mean((lu_clouds[both] > 0.5) == (truth[both] == 1)) > 0.9
        clear = both & (lu_clouds == 0) & (truth == 0)
        ratio = np.median(pv_dn[:, clear] / np.maximum(lu_dn[:, clear], 1), axis=1)
        if shift:
            assert abs(ratio[0] - PV_GAIN[0]) < 0.6 and ratio[0] > 1.15  # blue: gain plus offset
            assert ratio[3] < 1.0                                       # swir darker
        else:
            np.testing.assert_allclose(ratio, 1.0, atol=0.12)


def test_thin_cloud_cover_follows_its_parameter():
    """``thin_cover`` sets the area in the Biome thin-cloud class; None keeps the default cirrus field."""
    from pvl8da.synthetic import BIOME_THIN, World

    x, y = np.meshgrid(np.arange(0, 60_000, 120.0), np.arange(0, 60_000, 120.0))

    def thin_fraction(**kwargs):
        classes = World(5, 45.0, 5.0, cloud_cover=0.01, **kwargs).sample(x, y, WHEN).biome_classes()
        return (classes == BIOME_THIN).mean()

    default, explicit = thin_fraction(), thin_fraction(thin_cover=0.084)
    assert 0.02 < default < 0.2 and abs(explicit - default) < 0.01
    assert thin_fraction(thin_cover=0.005) < default / 4
    assert thin_fraction(thin_cover=0.3) > 2 * default
