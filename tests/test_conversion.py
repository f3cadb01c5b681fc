"""Landsat-8 -> Proba-V conversion: the reference products, windowing, tasks, bad input."""
import shutil

import h5py
import luigi
import numpy as np
import pytest

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from pvl8da.conversion import Downscaled, convert_scene, downscale_scene, psf_kernel_1d, pv_grid, to_probav_grid
from pvl8da.errors import InputError
from pvl8da.sensors.landsat8 import open_scene
from pvl8da.sensors.probav import PV_BANDS, transform_from_mapping
from pvl8da.synthetic import write_landsat8_scene
from tasks.convert import ConvertPV
from tasks.synthetic import GenerateSyntheticScene

SCENE = "LC80010112014080LGN00"


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    return write_landsat8_scene(tmp_path_factory.mktemp("scene"), shape=(101, 119), seed=5, with_biome_mask=True,
                                with_pan=False)


def _read(path):
    with h5py.File(path, "r") as f:
        bands = {b: f[f"LEVEL2A/RADIOMETRY/{b}/TOA"][()] for b in PV_BANDS}
        mapping = f[f"LEVEL2A/RADIOMETRY/{PV_BANDS[0]}/TOA"].attrs["MAPPING"]
        attrs = {b: dict(f[f"LEVEL2A/RADIOMETRY/{b}/TOA"].attrs) for b in PV_BANDS}
        return bands, f["CM_RESAMPLED"][()], transform_from_mapping(mapping), attrs, dict(f.attrs)


@pytest.mark.parametrize("resolution", ["333M", "100M", "1KM"])
def test_matches_reference_products(reference_dir, tmp_path, resolution):
    golden = reference_dir / "golden/convert"
    out = convert_scene(golden / SCENE, tmp_path, resolution, "biome", progress=False)
    assert out.name == f"{SCENE}_{resolution}.HDF5"
    bands, clouds, transform, attrs, root = _read(out)
    ref_bands, ref_clouds, ref_transform, _, ref_root = _read(golden / f"{SCENE}_{resolution}.reference.HDF5")
    for a, b in zip(transform[:6], ref_transform[:6]):
        assert a == pytest.approx(b, abs=1e-9)
    for band in PV_BANDS:
        ours, ref = bands[band], ref_bands[band]
        assert ours.shape == ref.shape and ours.dtype == np.int16
        valid, ref_valid = ours > -1000, ref > -1000
        assert np.mean(valid == ref_valid) >= 0.99
        assert np.all(ours[~valid] == -2000)
        diff = np.abs(ours.astype(int) - ref.astype(int))[valid & ref_valid]
        assert diff.mean() <= 2 and np.percentile(diff, 99) <= 10
        assert attrs[band]["SCALE"] == 2000 and attrs[band]["OFFSET"] == 0
    both = (clouds >= 0) & (ref_clouds >= 0)
    assert both.sum() > 0.3 * clouds.size
    assert np.mean((clouds[both] > 0.5) == (ref_clouds[both] > 0.5)) >= 0.99
    for key in ("START_DATE", "END_DATE", "image", "class_image"):
        assert root[key] == ref_root[key]


def test_psf_kernel_is_normalised_gaussian():
    k = psf_kernel_1d(50.0845)
    assert k.shape == (15,) and k.sum() == pytest.approx(1.0)
    assert k[7] / k[6] == pytest.approx(np.exp(0.5 * (30 / 50.0845) ** 2))
    np.testing.assert_allclose(k, k[::-1])


@pytest.mark.parametrize("window_rows", [3, 4, 7, 50])
def test_windows_equal_whole_scene(small_scene, window_rows):
    scene = open_scene(small_scene, "biome")
    whole = downscale_scene(scene, window_rows=1000, workers=1, progress=False)
    parts = downscale_scene(scene, window_rows=window_rows, workers=2, progress=False)
    assert whole.bands.shape == (4, 34, 40)
    np.testing.assert_allclose(parts.bands, whole.bands, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(parts.invalid_fraction, whole.invalid_fraction, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(parts.labels, whole.labels, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(parts.labels_invalid, whole.labels_invalid, rtol=1e-6, atol=1e-7)


def test_labels_invalid_weight_is_the_spec_sum(small_scene):
    """SPEC §2.6: the unnormalised 3×3 sum (stride 3, padding 1) of "label fill or image invalid"."""
    scene = open_scene(small_scene, "biome")
    d = downscale_scene(scene, progress=False)
    mask = np.pad((scene.labels() == 0.5) | scene.invalid(), 1, constant_values=True).astype(np.float64)
    rows, cols = d.invalid_fraction.shape
    mask = np.pad(mask, ((0, 3 * rows - mask.shape[0] + 2), (0, 3 * cols - mask.shape[1] + 2)))
    kernel = np.array([[0.5, 1.0, 0.5], [1.0, 1.5, 1.0], [0.5, 1.0, 0.5]])
    spec = sum(kernel[a, b] * mask[a:a + 3 * rows:3, b:b + 3 * cols:3] for a in range(3) for b in range(3))
    assert 0 < (spec > 0).mean() < 1
    np.testing.assert_allclose(d.labels_invalid, spec, atol=1e-5)
    assert not d.label_fill.any()  # Biome labels are filled exactly where the image is invalid


def _downscaled(shape, n_layers, seed=0):
    rng = np.random.default_rng(seed)
    layers = rng.uniform(0, 0.5, (n_layers,) + shape).astype(np.float32)
    layers[4:] = 0
    transform = Affine(90.0, 0, 600000.0, 0, -90.0, 5800000.0)
    return Downscaled(layers, transform, CRS.from_epsg(32631))


def test_each_layer_is_warped_whole():
    """A stack big enough for GDAL to warp in chunks: every layer must still match its warp in one piece."""
    d = _downscaled((1600, 1600), 7)
    product = to_probav_grid(d, "333M")
    transform, width, height = pv_grid(d, "333M")
    for band in range(4):
        alone = np.full((height, width), -1.0, np.float32)
        reproject(d.layers[band], alone, src_transform=d.transform, src_crs=d.crs, dst_transform=transform,
                  dst_crs="EPSG:4326", dst_nodata=-1.0, resampling=Resampling.lanczos, warp_mem_limit=1024)
        np.testing.assert_array_equal(product.toa[band], alone)


def test_label_fill_on_valid_pixels_makes_labels_invalid():
    d = _downscaled((60, 60), 7)
    d.layers[5] = 1.0
    d.layers[6, 20:40, 20:40] = 1.0  # labels filled where the image is valid
    product = to_probav_grid(d, "333M")
    assert not product.invalid[5:-5, 5:-5].any()
    bad = product.clouds == -1
    assert bad[5:-5, 5:-5].any() and not bad.all()
    d.layers[6] = 0
    assert not (to_probav_grid(d, "333M").clouds[5:-5, 5:-5] == -1).any()


def test_unknown_resolution_writes_nothing(small_scene, tmp_path):
    with pytest.raises(InputError, match="unknown resolution"):
        convert_scene(small_scene, tmp_path, "250M", "biome")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_existing_output(small_scene, tmp_path):
    broken = tmp_path / "in" / small_scene.name
    shutil.copytree(small_scene, broken)
    band = broken / f"{broken.name}_B5.TIF"
    band.write_bytes(band.read_bytes()[:2000])
    out = tmp_path / "out"
    out.mkdir()
    existing = out / f"{broken.name}_333M.HDF5"
    existing.write_bytes(b"previous product")
    with pytest.raises(InputError, match="_B5.TIF"):
        convert_scene(broken, out, "333M", "biome", progress=False)
    assert existing.read_bytes() == b"previous product"
    assert sorted(p.name for p in out.iterdir()) == [existing.name]


def test_biome_without_mask_fails_cleanly(small_scene, tmp_path):
    broken = tmp_path / "in" / small_scene.name
    shutil.copytree(small_scene, broken)
    (broken / f"{broken.name}_fixedmask.hdr").unlink()
    with pytest.raises(InputError, match="fixedmask.hdr"):
        convert_scene(broken, tmp_path / "out", "333M", "biome")
    assert not (tmp_path / "out").exists()


def test_tasks_end_to_end(tmp_path):
    gen = GenerateSyntheticScene(dest=str(tmp_path / "l8"), kind="landsat8", rows=90, cols=90, seed=2,
                                 lat=-33.9, lon=18.4, collection=2, gt38=True)
    assert luigi.build([gen], local_scheduler=True, log_level="WARNING")
    scene = open_scene(gen.output().path, "38c")
    assert scene.collection == 2 and scene.crs.to_epsg() == 32734
    task = ConvertPV(l8img=gen.output().path, outfolder=str(tmp_path / "pv"), resolution="333M",
                     type_product="38c", quicklook=True)
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    product = task.output()["product"].path
    bands, clouds, transform, _, root = _read(product)
    assert root["class_image"] == "38-Cloud"
    assert transform.f < 0 and -34.5 < transform.f < -33.5
    assert (bands["NIR"] > -1000).mean() > 0.3
    png = tmp_path / "pv" / f"{scene.scene_id}_333M.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mtime = (tmp_path / "pv" / f"{scene.scene_id}_333M.HDF5").stat().st_mtime_ns
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert (tmp_path / "pv" / f"{scene.scene_id}_333M.HDF5").stat().st_mtime_ns == mtime
    assert not [p for p in (tmp_path / "pv").iterdir() if "partial" in p.name]
