"""Physically impossible input values: non-finite reflectance, bad SCALE/OFFSET, the sun below the horizon, all fill."""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from pvl8da.conversion import convert_scene
from pvl8da.errors import InputError
from pvl8da.inference.products import infer_da
from pvl8da.sensors.landsat8 import open_scene
from pvl8da.models.da import build_cloud_unet, build_generator
from pvl8da.sensors.probav import SM_PATH, LandsatAsProbaVProduct, ProbaVProduct, band_path, open_product
from pvl8da.synthetic import write_landsat8_scene, write_probav_product

#: (row, col) of the pixels given NaN, +inf and -inf.
BAD_PIXELS = ((10, 10), (20, 30), (40, 5))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, Path]:
    """A randomly initialised U-Net and generator saved with the project's builders."""
    folder = tmp_path_factory.mktemp("weights")
    unet, generator = folder / "unet.weights.h5", folder / "generator.weights.h5"
    build_cloud_unet().save_weights(unet)
    build_generator().save_weights(generator)
    return unet, generator


def float_band(path: Path, band: str = "BLUE") -> Path:
    """Store a band's TOA as float32 holding NaN, +inf and -inf at :data:`BAD_PIXELS` (same SCALE/OFFSET)."""
    with h5py.File(path, "r+") as f:
        old = f[band_path(band)]
        data, attrs = old[()].astype(np.float32), dict(old.attrs)
        for (row, col), value in zip(BAD_PIXELS, (np.nan, np.inf, -np.inf)):
            data[row, col] = value
        del f[band_path(band)]
        new = f.create_dataset(band_path(band), data=data, chunks=True, compression="gzip")
        new.attrs.update(attrs)
    return path


def set_attr(path: Path, band: str, name: str, value: float) -> Path:
    with h5py.File(path, "r+") as f:
        f[band_path(band)].attrs[name] = np.float32(value)
    return path


def test_nonfinite_reflectance_is_invalid(tmp_path):
    clean = write_probav_product(tmp_path / "clean", shape=(48, 48), seed=3)
    with ProbaVProduct(clean) as product:
        before = product.invalid()
    edited = float_band(write_probav_product(tmp_path / "edited", shape=(48, 48), seed=3))
    with ProbaVProduct(edited) as product:
        invalid = product.invalid()
    rows, cols = zip(*BAD_PIXELS)
    assert not before[rows, cols].any() and invalid[rows, cols].all()
    invalid[rows, cols] = False
    np.testing.assert_array_equal(invalid, before)

    with h5py.File(edited, "r+") as f:  # without SM: a Landsat-as-Proba-V product (DN ≤ -1000 invalid)
        del f[SM_PATH]
    with open_product(edited) as product:
        assert isinstance(product, LandsatAsProbaVProduct)
        assert product.invalid()[rows, cols].all() and product.invalid().sum() == len(BAD_PIXELS)


def test_nonfinite_pixels_do_not_spread_through_inference(tmp_path, weights):
    product = float_band(write_probav_product(tmp_path / "in", shape=(64, 64), seed=4))
    with ProbaVProduct(product) as src:
        n_invalid = int(src.invalid().sum())
    dest = tmp_path / "out.HDF5"
    infer_da(product, dest, *weights, quicklook=False)
    with h5py.File(dest, "r") as f:
        clouds, blue = f["CM_PVDAGANS"][()], f[band_path("BLUE")][()]
    rows, cols = zip(*BAD_PIXELS)
    assert np.isfinite(clouds).all() and np.isfinite(blue).all()
    assert (clouds[rows, cols] == -1).all() and (blue[rows, cols] == -1).all()
    assert (clouds == -1).sum() == n_invalid
    assert ((clouds[clouds != -1] >= 0) & (clouds[clouds != -1] <= 1)).all()


@pytest.mark.parametrize("name, value", [("SCALE", 0.0), ("SCALE", -2000.0), ("SCALE", np.nan), ("SCALE", np.inf),
                                         ("OFFSET", np.nan), ("OFFSET", -np.inf)])
def test_impossible_scale_or_offset_is_refused(tmp_path, weights, name, value):
    product = set_attr(write_probav_product(tmp_path / "in", shape=(32, 32), seed=5), "NIR", name, value)
    message = rf"{re.escape(str(product))}: band NIR has SCALE .* and OFFSET .*finite SCALE > 0"
    for open_ in (ProbaVProduct, open_product):
        with pytest.raises(InputError, match=message):
            open_(product)
    dest = tmp_path / "out.HDF5"
    with pytest.raises(InputError, match=message):
        infer_da(product, dest, *weights, quicklook=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def set_sun_elevation(scene: Path, elevation: float) -> Path:
    mtl = next(scene.glob("*_MTL.txt"))
    text = re.sub(r"SUN_ELEVATION = \S+", f"SUN_ELEVATION = {elevation:.8f}", mtl.read_text())
    mtl.write_text(text)
    return mtl


@pytest.mark.parametrize("elevation", [0.0, -12.5])
def test_sun_below_horizon_is_refused(tmp_path, elevation):
    scene = write_landsat8_scene(tmp_path / "scenes", shape=(64, 64), seed=6, with_pan=False)
    mtl = set_sun_elevation(scene, elevation)
    opened = open_scene(scene)
    message = rf"{re.escape(str(mtl))}: SUN_ELEVATION = {elevation:g}; TOA reflectance needs the sun above the horizon"
    with pytest.raises(InputError, match=message):
        opened.toa(4)
    assert np.isfinite(opened.brightness_temperature(10)).all()  # thermal bands do not need the sun
    with pytest.raises(InputError, match=message):
        convert_scene(scene, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("*.HDF5"))


def fill_everything(scene: Path, type_product: str) -> None:
    """Flag every pixel as fill: the quality band's bit 0, and (Biome) the manual mask's class 0."""
    quality = open_scene(scene, type_product).quality_path
    with rasterio.open(quality, "r+") as dst:
        dst.write(np.ones((dst.height, dst.width), np.uint16), 1)
    for img in scene.glob("*_fixedmask.img"):
        img.write_bytes(bytes(img.stat().st_size))


@pytest.mark.parametrize("type_product", ["landsat8", "biome"])
def test_all_fill_scene_is_refused_before_converting(tmp_path, type_product):
    scene = write_landsat8_scene(tmp_path / "scenes", shape=(64, 64), seed=7, with_pan=False,
                                 with_biome_mask=type_product == "biome")
    fill_everything(scene, type_product)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=rf"{re.escape(str(scene))}: scene \S+ has no valid pixel \(all fill\)"):
        convert_scene(scene, out, type_product=type_product, progress=False)
    assert not out.exists()
