"""Landsat-8/9 Level-1 scenes of every generation (pre-collection, Collection 1 and 2): DN, TOA reflectance,
brightness temperature, quality masks.

Biome (ENVI ``fixedmask``) and 38-Cloud (``edited_corrected_gts<ID>.TIF``) scenes add manual cloud labels.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from pvl8da.sensors import quality
from pvl8da.errors import InputError
from pvl8da.sensors.mtl import MTL

log = logging.getLogger(__name__)

REFLECTIVE_BANDS = tuple(range(1, 10))
THERMAL_BANDS = (10, 11)
TYPE_PRODUCTS = ("landsat8", "biome", "38c")

# Biome fixedmask classes.
BIOME_FILL, BIOME_SHADOW, BIOME_CLEAR, BIOME_THIN, BIOME_CLOUD = 0, 64, 128, 192, 255
#: Cloud label of each fixedmask value, looked up in one pass: 1 thin or thick cloud, 0.5 fill, 0 otherwise.
BIOME_LABELS = np.zeros(256, np.float32)
BIOME_LABELS[[BIOME_THIN, BIOME_CLOUD]] = 1.0
BIOME_LABELS[BIOME_FILL] = 0.5
BIOME_LABELS.flags.writeable = False


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


def toa_reflectance(dn: np.ndarray, mtl: MTL, band: int) -> np.ndarray:
    """float32 TOA reflectance of a reflective band's DN: (DN·MULT + ADD) / sin(SUN_ELEVATION) (SPEC §1);
    InputError naming the MTL unless the sun is above the horizon (0 < SUN_ELEVATION ≤ 90)."""
    elevation = mtl.sun_elevation
    if not 0 < elevation <= 90:
        raise InputError(f"{mtl.source}: SUN_ELEVATION = {elevation:g}; TOA reflectance needs the sun above the "
                         "horizon (0 < SUN_ELEVATION ≤ 90)")
    mult, add = mtl.reflectance_rescaling(band)
    sin_e = np.sin(np.deg2rad(elevation))
    toa = np.multiply(dn, np.float32(mult / sin_e), dtype=np.float32)  # one pass and one array, in float32
    toa += np.float32(add / sin_e)
    return toa


def brightness_temperature(dn: np.ndarray, mtl: MTL, band: int) -> np.ndarray:
    """float32 at-sensor brightness temperature (K) of a thermal band's DN: K2 / ln(K1 / L + 1)."""
    mult, add = mtl.radiance_rescaling(band)
    k1, k2 = mtl.thermal_constants(band)
    radiance = np.asarray(dn).astype(np.float64) * mult + add
    with np.errstate(divide="ignore", invalid="ignore"):
        return (k2 / np.log(k1 / radiance + 1.0)).astype(np.float32)


def find_mtl(folder: str | os.PathLike) -> Path:
    """``<folder>/<folder name>_MTL.txt``, else the folder's only ``*_MTL.txt``; InputError otherwise."""
    folder = Path(folder)
    mtl_path = folder / f"{folder.name}_MTL.txt"
    if mtl_path.is_file():
        return mtl_path
    candidates = sorted(folder.glob("*_MTL.txt"))
    if len(candidates) != 1:
        found = "none" if not candidates else ", ".join(p.name for p in candidates)
        raise InputError(f"{mtl_path}: expected one *_MTL.txt in the scene folder, found {found}")
    return candidates[0]


def scene_id_of(folder: str | os.PathLike) -> str:
    """The scene ID a scene folder's files carry (its MTL's name), or the folder's name before it exists."""
    try:
        return find_mtl(folder).name[: -len("_MTL.txt")]
    except InputError:
        return Path(folder).name


class Landsat8Scene:
    """A Landsat-8/9 L1 scene folder holding ``<ID>_B1.TIF`` … ``<ID>_B11.TIF``, a quality band and the MTL.

    The folder is normally named after its scene ID; otherwise the ID and the file names come from the MTL
    (``LANDSAT_PRODUCT_ID`` or ``LANDSAT_SCENE_ID``, ``FILE_NAME_BAND_n``, the quality file name).
    """

    type_product = "landsat8"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: Landsat-8 scene folder not found")
        mtl_path = find_mtl(self.folder)
        self.mtl = MTL.read(mtl_path)
        self.mtl.check_spacecraft()
        self.collection = self.mtl.collection
        self.scene_id = mtl_path.name[: -len("_MTL.txt")]
        self._check_quality_name()
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
        return (f"{type(self).__name__}({str(self.folder)!r}, {self.mtl.generation}, {self.mtl.spacecraft}, "
                f"shape={self.shape})")

    @property
    def acquisition_time(self):
        return self.mtl.acquisition_time

    @property
    def sun_elevation(self) -> float:
        return self.mtl.sun_elevation

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(x, y) size of the scene's pixels in metres."""
        return abs(self.transform.a), abs(self.transform.e)

    def band_path(self, band: int) -> Path:
        name = self.mtl.file_name(f"FILE_NAME_BAND_{band}")
        return self.folder / (name or f"{self.scene_id}_B{band}.TIF")

    @property
    def quality_path(self) -> Path:
        name = self.mtl.file_name("FILE_NAME_BAND_QUALITY") or self.mtl.file_name("FILE_NAME_QUALITY_L1_PIXEL")
        return self.folder / (name or f"{self.scene_id}_{quality.QUALITY_BAND[self.collection]}.TIF")

    def _check_quality_name(self) -> None:
        """The quality band's name must be the one of the MTL's generation (BQA or QA_PIXEL)."""
        expected = quality.QUALITY_BAND[self.collection]
        path = self.quality_path
        if not path.name.upper().endswith(f"_{expected}.TIF"):
            raise InputError(f"{path}: quality band name does not match the {self.mtl.generation} MTL "
                             f"{self.mtl.source} (expected <ID>_{expected}.TIF)")
        other = "QA_PIXEL" if expected == "BQA" else "BQA"
        stray = self.folder / f"{self.scene_id}_{other}.TIF"
        if not path.is_file() and stray.is_file():
            raise InputError(f"{stray}: a {other} quality band in a {self.mtl.generation} scene (its MTL "
                             f"{self.mtl.source} calls for {path.name})")

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
        return toa_reflectance(self.read_dn(band, window), self.mtl, band)

    def brightness_temperature(self, band: int, window: Window | None = None) -> np.ndarray:
        """At-sensor brightness temperature in kelvin of a thermal band: K2 / ln(K1 / L + 1)."""
        if band not in THERMAL_BANDS:
            raise ValueError(f"brightness temperature is defined for bands 10 and 11, not {band}")
        return brightness_temperature(self.read_dn(band, window), self.mtl, band)

    def quality(self, window: Window | None = None) -> np.ndarray:
        """The raw quality band (BQA for pre-collection and Collection 1, QA_PIXEL for Collection 2)."""
        return _read_band(self.quality_path, window, self.shape)

    def quality_masks(self, window: Window | None = None) -> quality.QualityMasks:
        """Fill, cloud, cirrus, cloud-shadow and snow masks decoded for the scene's generation."""
        return quality.decode(self.quality(window), self.collection)

    def fill(self, window: Window | None = None) -> np.ndarray:
        """True where the quality band flags fill (bit 0 in every generation)."""
        return (self.quality(window) & 1).astype(bool)

    def cfmask_cloud(self, window: Window | None = None) -> np.ndarray:
        """The operational cloud flag: Collection 1 BQA bit 4, Collection 2 QA_PIXEL bit 3, pre-collection
        cloud or cirrus confidence medium or high (bit 15 or 13, the FCD paper's baseline); fill excluded."""
        return quality.cloud_flag(self.quality(window), self.collection)

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
            if mask.dtype != np.uint8:
                raise InputError(f"{hdr}: fixedmask of type {mask.dtype}; the Biome masks are 8-bit (data type = 1)")
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
        return BIOME_LABELS[self.cloud_mask(window)]


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


#: Bands of a 38-Cloud training patch, in the order :func:`read_38cloud_patch` stacks them.
CLOUD38_PATCH_BANDS = ("red", "green", "blue", "nir")


def _38cloud_patch_file(root: Path, prefix: str, patch: str) -> Path:
    """``<root>/<prefix>_<patch>.TIF``, or the data set's own layout ``<root>/{train,test}_<prefix>/…``."""
    name = f"{prefix}_{patch}.TIF"
    for path in (root / name, root / f"train_{prefix}" / name, root / f"test_{prefix}" / name):
        if path.is_file():
            return path
    raise InputError(f"{root / name}: 38-Cloud {prefix} patch not found")


def read_38cloud_patch(root: str | os.PathLike, patch: str,
                       with_mask: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """A 38-Cloud patch ``patch_<n>_<r>_by_<c>_<product ID>``: DN (4, H, W) uint16 in the order of
    :data:`CLOUD38_PATCH_BANDS` (0 = fill) and, with ``with_mask``, its ground truth (``gt``, cloud > 0)."""
    root = Path(root)
    with warnings.catch_warnings():  # the patches carry no georeferencing
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        bands = [_read_band(_38cloud_patch_file(root, band, patch), None) for band in CLOUD38_PATCH_BANDS]
        mask = _read_band(_38cloud_patch_file(root, "gt", patch), None) > 0 if with_mask else None
    shapes = {b.shape for b in bands}
    if len(shapes) != 1:
        raise InputError(f"{root}: 38-Cloud patch {patch} has bands of different sizes {sorted(shapes)}")
    if mask is not None and mask.shape != bands[0].shape:
        raise InputError(f"{_38cloud_patch_file(root, 'gt', patch)}: mask size {mask.shape} differs from the "
                         f"bands' {bands[0].shape}")
    return np.stack(bands).astype(np.uint16, copy=False), mask
