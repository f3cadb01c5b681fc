"""Landsat-8 Level-1 scenes (Collection 1 and 2): DN, TOA reflectance, brightness temperature, quality masks.

Biome (ENVI ``fixedmask``) and 38-Cloud (``edited_corrected_gts<ID>.TIF``) scenes add manual cloud labels.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pvl8da.errors import InputError
from pvl8da.mtl import MTL

log = logging.getLogger(__name__)

REFLECTIVE_BANDS = tuple(range(1, 10))
THERMAL_BANDS = (10, 11)
TYPE_PRODUCTS = ("landsat8", "biome", "38c")

# Biome fixedmask classes.
BIOME_FILL, BIOME_SHADOW, BIOME_CLEAR, BIOME_THIN, BIOME_CLOUD = 0, 64, 128, 192, 255


def _read_band(path: Path, window: Window | None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read band 1 of a raster, turning GDAL failures (missing, truncated, corrupt) into InputError."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with rasterio.open(path) as src:
            if shape is not None and (src.height, src.width) != shape:
                raise InputError(f"{path}: size {src.height}x{src.width} differs from the scene's "
                                 f"{shape[0]}x{shape[1]}")
            return src.read(1, window=window)
    except RasterioError as err:
        raise InputError(f"{path}: cannot read raster ({err}); truncated or corrupt file?") from err


class Landsat8Scene:
    """A Landsat-8 L1 scene folder ``<ID>/`` holding ``<ID>_B1.TIF`` … ``<ID>_B11.TIF``, a quality band and the MTL."""

    type_product = "landsat8"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: Landsat-8 scene folder not found")
        self.scene_id = self.folder.name
        mtl_path = self.folder / f"{self.scene_id}_MTL.txt"
        if not mtl_path.is_file():
            candidates = sorted(self.folder.glob("*_MTL.txt"))
            if not candidates:
                raise InputError(f"{mtl_path}: MTL file not found in the scene folder")
            mtl_path = candidates[0]
        self.mtl = MTL.read(mtl_path)
        self.collection = self.mtl.collection
        ref = self.band_path(1)
        if not ref.is_file():
            raise InputError(f"{ref}: band 1 not found")
        try:
            with rasterio.open(ref) as src:
                self.crs = src.crs
                self.transform = src.transform
                self.shape = (src.height, src.width)
        except RasterioError as err:
            raise InputError(f"{ref}: cannot open raster ({err})") from err

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r}, collection={self.collection}, shape={self.shape})"

    @property
    def acquisition_time(self):
        return self.mtl.acquisition_time

    @property
    def sun_elevation(self) -> float:
        return self.mtl.sun_elevation

    def band_path(self, band: int) -> Path:
        return self.folder / f"{self.scene_id}_B{band}.TIF"

    @property
    def quality_path(self) -> Path:
        name = "BQA" if self.collection == 1 else "QA_PIXEL"
        return self.folder / f"{self.scene_id}_{name}.TIF"

    def check_files(self, bands=REFLECTIVE_BANDS[:7] + (9,) + THERMAL_BANDS) -> None:
        """Raise InputError naming the first missing band, quality band or label file."""
        for path in [self.band_path(b) for b in bands] + [self.quality_path] + self.label_paths():
            if not path.is_file():
                raise InputError(f"{path}: missing file of scene {self.scene_id}")

    def label_paths(self) -> list[Path]:
        return []

    def read_dn(self, band: int, window: Window | None = None) -> np.ndarray:
        """Raw uint16 digital numbers of a band (0 = fill). Band 8 (15 m) is not on the scene grid."""
        shape = None if band == 8 else self.shape
        return _read_band(self.band_path(band), window, shape)

    def toa(self, band: int, window: Window | None = None) -> np.ndarray:
        """TOA reflectance with the sun-elevation correction: (DN·MULT + ADD) / sin(SUN_ELEVATION)."""
        if band not in REFLECTIVE_BANDS:
            raise ValueError(f"TOA reflectance is defined for bands 1-9, not {band}")
        mult, add = self.mtl.reflectance_rescaling(band)
        dn = self.read_dn(band, window).astype(np.float32)
        scale = np.float32(mult / np.sin(np.deg2rad(self.sun_elevation)))
        offset = np.float32(add / np.sin(np.deg2rad(self.sun_elevation)))
        return dn * scale + offset

    def brightness_temperature(self, band: int, window: Window | None = None) -> np.ndarray:
        """At-sensor brightness temperature in kelvin of a thermal band: K2 / ln(K1 / L + 1)."""
        if band not in THERMAL_BANDS:
            raise ValueError(f"brightness temperature is defined for bands 10 and 11, not {band}")
        mult, add = self.mtl.radiance_rescaling(band)
        k1, k2 = self.mtl.thermal_constants(band)
        radiance = self.read_dn(band, window).astype(np.float64) * mult + add
        with np.errstate(divide="ignore", invalid="ignore"):
            return (k2 / np.log(k1 / radiance + 1.0)).astype(np.float32)

    def quality(self, window: Window | None = None) -> np.ndarray:
        """The quality band (BQA for Collection 1, QA_PIXEL for Collection 2)."""
        return _read_band(self.quality_path, window, self.shape)

    def fill(self, window: Window | None = None) -> np.ndarray:
        """True where the quality band flags fill (bit 0 in both collections)."""
        return (self.quality(window) & 1).astype(bool)

    def cfmask_cloud(self, window: Window | None = None) -> np.ndarray:
        """The operational CFMask cloud flag: BQA bit 4 (Collection 1) or QA_PIXEL bit 3 (Collection 2)."""
        bit = 4 if self.collection == 1 else 3
        return ((self.quality(window) >> bit) & 1).astype(bool)

    def invalid(self, window: Window | None = None) -> np.ndarray:
        """Pixels the Proba-V conversion treats as invalid (quality-band fill)."""
        return self.fill(window)

    def labels(self, window: Window | None = None) -> np.ndarray | None:
        """Cloud labels as float32 (1 cloud, 0 clear or shadow, 0.5 no label) or None without manual labels."""
        return None


class BiomeScene(Landsat8Scene):
    """A scene of the Landsat 8 Cloud Cover Assessment (Biome) data with its ENVI ``<ID>_fixedmask``."""

    type_product = "biome"

    def __init__(self, folder: str | os.PathLike):
        super().__init__(folder)
        self._mask = None

    def label_paths(self) -> list[Path]:
        return [self.folder / f"{self.scene_id}_fixedmask.hdr", self.folder / f"{self.scene_id}_fixedmask.img"]

    def _mask_array(self) -> np.ndarray:
        if self._mask is None:
            import spectral.io.envi as envi

            hdr, img = self.label_paths()
            for path in (hdr, img):
                if not path.is_file():
                    raise InputError(f"{path}: Biome manual cloud mask missing for scene {self.scene_id}")
            try:
                mask = envi.open(str(hdr), str(img)).open_memmap(writable=False)
            except Exception as err:  # spectral raises its own types for malformed headers
                raise InputError(f"{hdr}: cannot read ENVI fixedmask ({err})") from err
            mask = mask[..., 0] if mask.ndim == 3 else mask
            if mask.shape != self.shape:
                raise InputError(f"{img}: fixedmask size {mask.shape} differs from the scene's {self.shape}")
            self._mask = mask
        return self._mask

    def cloud_mask(self, window: Window | None = None) -> np.ndarray:
        """Raw fixedmask classes: 0 fill, 64 shadow, 128 clear, 192 thin cloud, 255 cloud."""
        mask = self._mask_array()
        if window is None:
            return np.asarray(mask)
        rows, cols = window.toslices()
        return np.asarray(mask[rows, cols])

    def cloud(self, window: Window | None = None) -> np.ndarray:
        """Thin or thick cloud."""
        mask = self.cloud_mask(window)
        return (mask == BIOME_THIN) | (mask == BIOME_CLOUD)

    def invalid(self, window: Window | None = None) -> np.ndarray:
        """Biome scenes: invalid where the manual mask is fill."""
        return self.cloud_mask(window) == BIOME_FILL

    def labels(self, window: Window | None = None) -> np.ndarray:
        mask = self.cloud_mask(window)
        labels = np.where((mask == BIOME_THIN) | (mask == BIOME_CLOUD), 1.0, 0.0).astype(np.float32)
        labels[mask == BIOME_FILL] = 0.5
        return labels


class Cloud38Scene(Landsat8Scene):
    """A 38-Cloud scene: the whole-scene ground truth ``edited_corrected_gts<ID>.TIF`` lies beside the bands."""

    type_product = "38c"

    def label_paths(self) -> list[Path]:
        return [self.folder / f"edited_corrected_gts{self.scene_id}.TIF"]

    def cloud(self, window: Window | None = None) -> np.ndarray:
        (path,) = self.label_paths()
        if not path.is_file():
            raise InputError(f"{path}: 38-Cloud ground truth missing for scene {self.scene_id}")
        return _read_band(path, window, self.shape) > 0

    def labels(self, window: Window | None = None) -> np.ndarray:
        labels = self.cloud(window).astype(np.float32)
        labels[self.fill(window)] = 0.5
        return labels


_SCENE_TYPES = {cls.type_product: cls for cls in (Landsat8Scene, BiomeScene, Cloud38Scene)}


def open_scene(folder: str | os.PathLike, type_product: str = "landsat8") -> Landsat8Scene:
    """Open a scene folder as a plain Landsat-8, Biome or 38-Cloud scene and check that its files are there."""
    if type_product not in _SCENE_TYPES:
        raise InputError(f"unknown type of product {type_product!r}; expected one of {', '.join(TYPE_PRODUCTS)}")
    scene = _SCENE_TYPES[type_product](folder)
    scene.check_files()
    return scene
