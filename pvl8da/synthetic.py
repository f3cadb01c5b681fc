"""Synthetic Landsat-8 scenes and Proba-V products of one seeded, georeferenced world.

A :class:`World` is a set of smooth random fields (sums of plane waves) defined in metres on the UTM
plane of a chosen place: terrain, moisture and urban fields pick the surface class (water, vegetation,
soil, urban, snow), a cloud field advected by the wind gives thick and thin clouds and their shadows.
Any sensor samples the same world at its own pixel centres and time, so a Landsat-8 scene and a Proba-V
product of the same seed, place and time show the same surface and clouds. Proba-V products carry a
simulated radiometric difference from Landsat (gain, offset, curvature per band): the difference that
domain adaptation has to remove.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from pvl8da.sensors import quality
from pvl8da.storage.atomic import atomic_dir, atomic_path
from pvl8da.storage.hdf5 import hdf5_writer
from pvl8da.conversion import BLUE_WEIGHTS, RESOLUTION_STEPS
from pvl8da.sensors.landsat8 import BIOME_CLEAR, BIOME_CLOUD, BIOME_FILL, BIOME_SHADOW, BIOME_THIN
from pvl8da.sensors.mtl import format_mtl
from pvl8da.sensors.probav import SM_PATH, create_grid_dataset, mapping_from_transform, write_toa_bands

log = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
CLASSES = ("water", "vegetation", "soil", "urban", "snow")
WATER, VEGETATION, SOIL, URBAN, SNOW = range(len(CLASSES))
# TOA reflectance of each surface class in Landsat bands 1, 2, 3, 4, 5, 6, 7, 9.
SPECTRAL_BANDS = (1, 2, 3, 4, 5, 6, 7, 9)
SURFACE_SPECTRA = np.array([
    [0.100, 0.080, 0.060, 0.040, 0.020, 0.010, 0.005, 0.002],   # water
    [0.090, 0.070, 0.075, 0.045, 0.360, 0.180, 0.080, 0.004],   # vegetation
    [0.120, 0.120, 0.160, 0.220, 0.300, 0.360, 0.290, 0.004],   # soil
    [0.140, 0.130, 0.140, 0.160, 0.220, 0.250, 0.220, 0.004],   # urban
    [0.850, 0.840, 0.820, 0.780, 0.700, 0.100, 0.080, 0.010],   # snow
], np.float32)
SURFACE_TEMPERATURE = np.array([288.0, 296.0, 306.0, 303.0, 266.0], np.float32)
CLOUD_SPECTRUM = np.array([0.620, 0.600, 0.585, 0.575, 0.580, 0.420, 0.300, 0.080], np.float32)
CLOUD_TEMPERATURE = 246.0
# Share of each class per biome (water, snow, urban); the rest splits into vegetation and soil.
BIOMES = {
    "Barren": dict(water=0.03, snow=0.00, urban=0.02, vegetation=0.10),
    "Forest": dict(water=0.05, snow=0.00, urban=0.02, vegetation=0.85),
    "GrassCrops": dict(water=0.05, snow=0.00, urban=0.05, vegetation=0.60),
    "Shrubland": dict(water=0.03, snow=0.00, urban=0.03, vegetation=0.35),
    "SnowIce": dict(water=0.10, snow=0.55, urban=0.00, vegetation=0.20),
    "Urban": dict(water=0.05, snow=0.00, urban=0.45, vegetation=0.35),
    "Water": dict(water=0.60, snow=0.00, urban=0.03, vegetation=0.50),
    "Wetlands": dict(water=0.30, snow=0.00, urban=0.02, vegetation=0.70),
}
# Simulated Proba-V radiometry relative to Landsat: pv = gain * rho + offset + curvature * rho**2.
PV_GAIN = np.array([1.10, 0.90, 1.08, 0.85], np.float32)
PV_OFFSET = np.array([0.035, -0.010, 0.005, 0.020], np.float32)
PV_CURVATURE = np.array([-0.06, 0.05, -0.05, 0.04], np.float32)
CLOUD_HEIGHT_M = 1500.0
THIN_FIELD_THRESHOLD = 1.2   # default thin cirrus: about 8 % of the area in the Biome "thin cloud" class
THIN_MAX_OPACITY = 0.45      # thin cloud opacity ramps from 0 to this over THIN_RAMP of its field
THIN_RAMP = 0.8
CLOUD_CLASS_OPACITY = 0.1    # from this opacity a pixel is (at least thin) cloud in the labels
CLOUD_EPOCH = dt.datetime(2014, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_LANDSAT_TIME = dt.datetime(2016, 5, 20, 10, 30, 0, tzinfo=dt.timezone.utc)
DEFAULT_PROBAV_TIME = dt.datetime(2016, 5, 20, 10, 15, 0, tzinfo=dt.timezone.utc)
# Landsat-8 Level-1 calibration written into the synthetic MTL files.
REFLECTANCE_MULT, REFLECTANCE_ADD = 2.0e-5, -0.1
RADIANCE_MULT, RADIANCE_ADD = 3.342e-4, 0.1
THERMAL_K = {10: (774.8853, 1321.0789), 11: (480.8883, 1201.1442)}


def utm_crs(lat: float, lon: float) -> CRS:
    """UTM zone of a place: EPSG 326zz north of the equator, 327zz south."""
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def sun_position(lat: float, when: dt.datetime) -> tuple[float, float]:
    """Approximate (elevation, azimuth) in degrees of the sun at a morning overpass."""
    declination = 23.44 * np.sin(2 * np.pi * (when.timetuple().tm_yday - 81) / 365.0)
    elevation = float(np.clip(90.0 - abs(lat - declination), 12.0, 75.0))
    azimuth = 145.0 if lat >= declination else 35.0
    return elevation, azimuth


class _Field:
    """A smooth random field: a normalised sum of plane waves with log-uniform wavelengths."""

    def __init__(self, rng: np.random.Generator, wavelength_m: tuple[float, float], n_waves: int = 24,
                 slope: float = 0.9):
        lo, hi = np.log(wavelength_m[0]), np.log(wavelength_m[1])
        wavelength = np.exp(rng.uniform(lo, hi, n_waves))
        angle = rng.uniform(0, 2 * np.pi, n_waves)
        k = 2 * np.pi / wavelength
        self.kx, self.ky = k * np.cos(angle), k * np.sin(angle)
        self.phase = rng.uniform(0, 2 * np.pi, n_waves)
        amp = (wavelength / wavelength.max()) ** slope
        self.amp = amp / np.sqrt(np.sum(amp ** 2) / 2.0)

    def __call__(self, x: np.ndarray, y: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Values (about unit standard deviation) at points (x, y) metres, the field moved by ``shift`` metres."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        out = np.zeros(np.broadcast(x, y).shape, np.float32)
        phases = np.mod(self.phase - self.kx * shift[0] - self.ky * shift[1], 2 * np.pi)
        for kx, ky, ph, a in zip(self.kx, self.ky, phases, self.amp):
            out += np.float32(a) * np.cos(np.float32(kx) * x + np.float32(ky) * y + np.float32(ph))
        return out


@dataclass
class Sample:
    """The world seen at a set of points and a time."""

    surface: np.ndarray        # uint8 class index
    opacity: np.ndarray        # float32 cloud opacity in [0, 1]
    shadow: np.ndarray         # bool
    texture: np.ndarray        # float32, ~unit std
    detector_noise: np.ndarray  # float32, drives the errors of the operational cloud masks

    def reflectance(self) -> np.ndarray:
        """TOA reflectance in Landsat bands 1-7 and 9, shape (8,) + points (computed band by band)."""
        out = np.empty((len(SPECTRAL_BANDS),) + self.surface.shape, np.float32)
        alpha = self.opacity
        shade = np.where(self.shadow, np.float32(0.35), np.float32(1.0)) * (1.0 + 0.12 * self.texture)
        cloud_texture = 1.0 + 0.04 * self.texture
        for i in range(len(SPECTRAL_BANDS)):
            surface = SURFACE_SPECTRA[self.surface, i] * shade
            np.clip((1.0 - alpha) * surface + alpha * CLOUD_SPECTRUM[i] * cloud_texture, 0.0, 1.2, out=out[i])
        return out

    def temperature(self) -> np.ndarray:
        surface = SURFACE_TEMPERATURE[self.surface] + 2.0 * self.texture
        return ((1.0 - self.opacity) * surface + self.opacity * CLOUD_TEMPERATURE).astype(np.float32)

    def biome_classes(self) -> np.ndarray:
        """Biome fixedmask classes (without fill): cloud, thin cloud, shadow, clear."""
        out = np.full(self.surface.shape, BIOME_CLEAR, np.uint8)
        out[self.shadow] = BIOME_SHADOW
        out[self.opacity >= CLOUD_CLASS_OPACITY] = BIOME_THIN
        out[self.opacity >= 0.5] = BIOME_CLOUD
        return out

    def operational_cloud(self, threshold: float) -> np.ndarray:
        """An imperfect operational cloud flag, as the real ones are: its errors follow a smooth noise field,
        so it misses thin clouds and flags bright snow and urban surfaces in patches."""
        cloud = self.opacity + 0.25 * self.detector_noise > threshold
        bright = (self.surface == SNOW) | (self.surface == URBAN)
        return cloud | (bright & (self.detector_noise > 0.8))


@dataclass
class World:
    """A seeded world around (lat, lon): surfaces, clouds moving with the wind, shadows.

    ``cloud_cover`` sets the thick clouds; ``thin_cover`` the area fraction of thin cloud (default:
    the same thin cirrus whatever the weather)."""

    seed: int
    lat: float
    lon: float
    biome: str = "GrassCrops"
    cloud_cover: float = 0.35
    thin_cover: float | None = None
    wind_ms: tuple[float, float] = (3.0, 1.0)
    crs: CRS = field(init=False)
    origin: tuple[float, float] = field(init=False)

    def __post_init__(self):
        from scipy.stats import norm  # SciPy is imported where scenes are drawn, so that `import tasks` stays light

        if self.biome not in BIOMES:
            raise ValueError(f"unknown biome {self.biome!r}; expected one of {', '.join(BIOMES)}")
        self.crs = utm_crs(self.lat, self.lon)
        xs, ys = warp_transform(WGS84, self.crs, [self.lon], [self.lat])
        self.origin = (xs[0], ys[0])
        rng = np.random.default_rng(self.seed)
        self._terrain = _Field(rng, (1000, 20000))
        self._moisture = _Field(rng, (600, 10000))
        self._urban = _Field(rng, (500, 5000))
        self._cloud = _Field(rng, (700, 12000))
        self._thin = _Field(rng, (500, 8000))
        self._texture = _Field(rng, (90, 1200), slope=0.3)
        self._noise = _Field(rng, (300, 5000), slope=0.5)
        mix = BIOMES[self.biome]
        self._q_water = norm.ppf(max(mix["water"], 1e-6))
        self._q_snow = norm.ppf(1 - max(mix["snow"], 1e-6))
        self._q_urban = norm.ppf(1 - max(mix["urban"], 1e-6))
        self._q_veg = norm.ppf(1 - mix["vegetation"])
        self._q_cloud = norm.ppf(1 - min(max(self.cloud_cover, 1e-4), 1 - 1e-4))
        self._q_thin = THIN_FIELD_THRESHOLD
        if self.thin_cover is not None:
            # thin opacity reaches the labels' cloud class where the field exceeds the threshold by this much
            to_class = THIN_RAMP * CLOUD_CLASS_OPACITY / THIN_MAX_OPACITY
            self._q_thin = norm.ppf(1 - min(max(self.thin_cover, 1e-4), 1 - 1e-4)) - to_class

    def _clouds(self, x, y, seconds: float) -> np.ndarray:
        shift = (self.wind_ms[0] * seconds, self.wind_ms[1] * seconds)
        thick = np.clip((self._cloud(x, y, shift) - self._q_cloud + 0.25) / 0.5, 0.0, 1.0)
        thin = THIN_MAX_OPACITY * np.clip((self._thin(x, y, shift) - self._q_thin) / THIN_RAMP, 0.0, 1.0)
        return np.maximum(thick, thin).astype(np.float32)

    def sample(self, x: np.ndarray, y: np.ndarray, when: dt.datetime) -> Sample:
        """The world at projected points (x, y) in the world's UTM CRS at time ``when``."""
        x = np.asarray(x, np.float64) - self.origin[0]
        y = np.asarray(y, np.float64) - self.origin[1]
        terrain, moisture, urban = self._terrain(x, y), self._moisture(x, y), self._urban(x, y)
        surface = np.where(moisture > self._q_veg, VEGETATION, SOIL).astype(np.uint8)
        surface[urban > self._q_urban] = URBAN
        surface[terrain > self._q_snow] = SNOW
        surface[terrain < self._q_water] = WATER
        seconds = (when - CLOUD_EPOCH).total_seconds()
        opacity = self._clouds(x, y, seconds)
        elevation, azimuth = sun_position(self.lat, when)
        reach = CLOUD_HEIGHT_M / np.tan(np.deg2rad(elevation))
        dx, dy = reach * np.sin(np.deg2rad(azimuth)), reach * np.cos(np.deg2rad(azimuth))
        shadow = (self._clouds(x + dx, y + dy, seconds) >= 0.5) & (opacity < 0.1)
        return Sample(surface, opacity, shadow, self._texture(x, y), self._noise(x, y))


def _sample_grid(world: World, transform: Affine, crs: CRS, shape: tuple[int, int], when: dt.datetime,
                 step: int) -> Sample:
    """Sample the world at the pixel centres of a raster, evaluating fields every ``step`` pixels."""
    from scipy.interpolate import RegularGridInterpolator

    height, width = shape
    # With step > 1 the coarse grid reaches one step past the last pixel, for interpolation.
    reach = step if step > 1 else 0
    rows = np.arange(0, height + reach, step, dtype=np.float64)
    cols = np.arange(0, width + reach, step, dtype=np.float64)
    cc, rr = np.meshgrid(cols + 0.5, rows + 0.5)
    x, y = transform @ (cc, rr)
    if crs != world.crs:
        x, y = (np.asarray(v).reshape(cc.shape) for v in warp_transform(crs, world.crs, x.ravel(), y.ravel()))
    if step > 1:
        fine_r, fine_c = np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64)
        pts = np.stack(np.meshgrid(fine_r, fine_c, indexing="ij"), axis=-1)
        x = RegularGridInterpolator((rows, cols), x)(pts)
        y = RegularGridInterpolator((rows, cols), y)(pts)
    return world.sample(x, y, when)


def _sample_utm(world: World, transform: Affine, shape: tuple[int, int], when: dt.datetime, step: int) -> Sample:
    """Sample a north-up raster in the world's own CRS: fields on a coarse grid, bilinearly zoomed."""
    from scipy.ndimage import zoom

    if step == 1:
        return _sample_grid(world, transform, world.crs, shape, when, 1)
    height, width = shape
    rows, cols = -(-height // step) + 1, -(-width // step) + 1
    coarse = _sample_grid(world, transform @ Affine.scale(step), world.crs, (rows, cols), when, 1)

    def up(a: np.ndarray, order: int) -> np.ndarray:
        z = zoom(a, step, order=order, grid_mode=True, mode="nearest")
        return z[:height, :width]

    fine_texture = _Field(np.random.default_rng(world.seed + 7), (60, 240), n_waves=12, slope=0.2)
    x0, y0 = transform @ (0.5, 0.5)
    xs = x0 + transform.a * np.arange(width, dtype=np.float32)
    ys = y0 + transform.e * np.arange(height, dtype=np.float32)
    texture = up(coarse.texture, 1) + 0.5 * fine_texture(xs[None, :] - world.origin[0],
                                                         ys[:, None] - world.origin[1])
    return Sample(up(coarse.surface, 0), np.clip(up(coarse.opacity, 1), 0, 1), up(coarse.shadow, 0),
                  texture, up(coarse.detector_noise, 1))


def _footprint(shape: tuple[int, int], tilt_deg: float) -> np.ndarray:
    """True inside the tilted rectangle of valid data of a Landsat scene."""
    height, width = shape
    theta = np.deg2rad(tilt_deg)
    rr, cc = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (cc - width / 2) * np.cos(theta) + (rr - height / 2) * np.sin(theta)
    v = -(cc - width / 2) * np.sin(theta) + (rr - height / 2) * np.cos(theta)
    half_w = width / (2 * (np.cos(theta) + np.sin(theta)))
    half_h = height / (2 * (np.cos(theta) + np.sin(theta)))
    return (np.abs(u) <= half_w) & (np.abs(v) <= half_h)


def _write_tif(path: Path, data: np.ndarray, crs: CRS, transform: Affine, **profile) -> None:
    meta = dict(driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype=data.dtype,
                crs=crs, transform=transform, **profile)
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(data, 1)


def _corner_lat_lon(crs: CRS, transform: Affine, shape: tuple[int, int]) -> dict:
    height, width = shape
    corners = {"UL": (0, 0), "UR": (width, 0), "LL": (0, height), "LR": (width, height)}
    xs, ys = zip(*(transform @ c for c in corners.values()))
    lons, lats = warp_transform(crs, WGS84, list(xs), list(ys))
    return {name: (lats[i], lons[i], xs[i], ys[i]) for i, name in enumerate(corners)}


def _corner_fields(crs: CRS, transform: Affine, shape: tuple[int, int]) -> dict:
    """The MTL's corner latitudes/longitudes, then projection coordinates."""
    corners = _corner_lat_lon(crs, transform, shape)
    fields = {}
    for name, (lat, lon, _, _) in corners.items():
        fields[f"CORNER_{name}_LAT_PRODUCT"] = round(float(lat), 5)
        fields[f"CORNER_{name}_LON_PRODUCT"] = round(float(lon), 5)
    for name, (_, _, x, y) in corners.items():
        fields[f"CORNER_{name}_PROJECTION_X_PRODUCT"] = round(float(x), 3)
        fields[f"CORNER_{name}_PROJECTION_Y_PRODUCT"] = round(float(y), 3)
    return fields


def _calibration() -> tuple[dict, dict]:
    """The MTL's radiometric rescaling and thermal constants of the synthetic sensor."""
    rescaling = {f"RADIANCE_MULT_BAND_{b}": RADIANCE_MULT for b in range(1, 12)}
    rescaling.update({f"RADIANCE_ADD_BAND_{b}": RADIANCE_ADD for b in range(1, 12)})
    rescaling.update({f"REFLECTANCE_MULT_BAND_{b}": REFLECTANCE_MULT for b in range(1, 10)})
    rescaling.update({f"REFLECTANCE_ADD_BAND_{b}": REFLECTANCE_ADD for b in range(1, 10)})
    thermal = {}
    for b, (k1, k2) in THERMAL_K.items():
        thermal[f"K1_CONSTANT_BAND_{b}"] = k1
        thermal[f"K2_CONSTANT_BAND_{b}"] = k2
    return rescaling, thermal


def _mtl_tree(collection: int, satellite: int, seed: int, scene_id: str, crs: CRS, transform: Affine,
              shape: tuple[int, int], when: dt.datetime, elevation: float, azimuth: float, cloud_cover: float,
              path_row: tuple[int, int], with_pan: bool) -> dict:
    """The MTL of a synthetic scene in its generation's layout (pre-collection and Collection 1, or 2)."""
    height, width = shape
    files = {f"FILE_NAME_BAND_{b}": f"{scene_id}_B{b}.TIF" for b in range(1, 12) if with_pan or b != 8}
    sizes = {"REFLECTIVE_LINES": height, "REFLECTIVE_SAMPLES": width, "THERMAL_LINES": height,
             "THERMAL_SAMPLES": width}
    if with_pan:
        sizes = {"PANCHROMATIC_LINES": 2 * height, "PANCHROMATIC_SAMPLES": 2 * width, **sizes}
    rescaling, thermal = _calibration()
    projection = {"MAP_PROJECTION": "UTM", "DATUM": "WGS84", "ELLIPSOID": "WGS84",
                  "UTM_ZONE": int(crs.to_epsg()) % 100, "GRID_CELL_SIZE_REFLECTIVE": 30.0,
                  "GRID_CELL_SIZE_THERMAL": 30.0, "ORIENTATION": "NORTH_UP",
                  "RESAMPLING_OPTION": "CUBIC_CONVOLUTION"}
    acquisition = {"SPACECRAFT_ID": f"LANDSAT_{satellite}", "SENSOR_ID": "OLI_TIRS", "WRS_PATH": path_row[0],
                   "WRS_ROW": path_row[1], "DATE_ACQUIRED": when.date(),
                   "SCENE_CENTER_TIME": when.strftime("%H:%M:%S.%f") + "0Z"}
    image = {"CLOUD_COVER": round(100 * cloud_cover, 2), "SUN_AZIMUTH": azimuth, "SUN_ELEVATION": elevation,
             "EARTH_SUN_DISTANCE": 1.0}
    qa_name = f"{scene_id}_{quality.QUALITY_BAND[collection]}.TIF"
    corners = _corner_fields(crs, transform, shape)
    if collection == quality.COLLECTION_2:
        return {"LANDSAT_METADATA_FILE": {
            "PRODUCT_CONTENTS": {"ORIGIN": "pvl8da synthetic scene", "LANDSAT_PRODUCT_ID": scene_id,
                                 "PROCESSING_LEVEL": "L1TP", "COLLECTION_NUMBER": 2, **files,
                                 "FILE_NAME_QUALITY_L1_PIXEL": qa_name,
                                 "FILE_NAME_METADATA_ODL": f"{scene_id}_MTL.txt"},
            "IMAGE_ATTRIBUTES": {**acquisition, **image},
            "PROJECTION_ATTRIBUTES": {**projection, **sizes, **corners},
            "LEVEL1_RADIOMETRIC_RESCALING": rescaling,
            "LEVEL1_THERMAL_CONSTANTS": thermal,
            "LEVEL1_PROJECTION_PARAMETERS": {k: projection[k] for k in ("MAP_PROJECTION", "DATUM", "ELLIPSOID",
                                                                        "UTM_ZONE", "ORIENTATION")},
        }}
    info = {"ORIGIN": "pvl8da synthetic scene"}
    if collection == quality.COLLECTION_1:
        info.update(LANDSAT_SCENE_ID=_pre_collection_id(seed, when), LANDSAT_PRODUCT_ID=scene_id,
                    COLLECTION_NUMBER=1, COLLECTION_CATEGORY="T1")
    else:
        info["LANDSAT_SCENE_ID"] = scene_id
    info["FILE_DATE"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    product = {"DATA_TYPE": "L1TP" if collection else "L1T", **acquisition, **corners, **sizes, **files,
               "FILE_NAME_BAND_QUALITY": qa_name, "METADATA_FILE_NAME": f"{scene_id}_MTL.txt"}
    return {"L1_METADATA_FILE": {"METADATA_FILE_INFO": info, "PRODUCT_METADATA": product, "IMAGE_ATTRIBUTES": image,
                                 "RADIOMETRIC_RESCALING": rescaling, "TIRS_THERMAL_CONSTANTS": thermal,
                                 "PROJECTION_PARAMETERS": projection}}


def _path_row(seed: int) -> tuple[int, int]:
    return 1 + seed % 233, 1 + (seed // 233) % 248


def _pre_collection_id(seed: int, when: dt.datetime, satellite: int = 8) -> str:
    path, row = _path_row(seed)
    return f"LC{satellite}{path:03d}{row:03d}{when.year}{when.timetuple().tm_yday:03d}LGN00"


def landsat8_scene_id(collection: int, seed: int, when: dt.datetime, satellite: int = 8) -> str:
    """The identifier of a synthetic scene: pre-collection (``LC8PPPRRRYYYYDDDLGN00``, collection 0) or the
    product ID of Collection 1 or 2 (``LC08_L1TP_PPPRRR_YYYYMMDD_YYYYMMDD_0N_T1``; ``LC09_…`` for Landsat 9)."""
    _check_generation(collection, satellite)
    if collection == quality.PRE_COLLECTION:
        return _pre_collection_id(seed, when, satellite)
    path, row = _path_row(seed)
    return f"LC0{satellite}_L1TP_{path:03d}{row:03d}_{when:%Y%m%d}_{when:%Y%m%d}_{collection:02d}_T1"


def _check_generation(collection: int, satellite: int) -> None:
    if collection not in quality.GENERATIONS:
        raise ValueError(f"collection must be 0 (pre-collection), 1 or 2, not {collection}")
    if satellite not in (8, 9) or (satellite == 9 and collection != quality.COLLECTION_2):
        raise ValueError(f"Landsat {satellite} scenes exist as Collection 2 only (Landsat 8: any generation)")


def _write_bands(stem: Path, sample: Sample, fill: np.ndarray, sin_e: float, rng: np.random.Generator,
                 grid: tuple, with_pan: bool) -> None:
    """``<stem>_B<n>.TIF``: noisy reflective DN, the 15 m panchromatic band if asked for, thermal DN."""
    crs, transform, profile = grid
    shape = fill.shape
    rho = sample.reflectance()
    for i, band in enumerate(SPECTRAL_BANDS):
        noisy = rho[i] + rng.normal(0, 0.002, shape).astype(np.float32)
        dn = np.clip(np.round((noisy * sin_e - REFLECTANCE_ADD) / REFLECTANCE_MULT), 1, 65535).astype(np.uint16)
        dn[fill] = 0
        _write_tif(Path(f"{stem}_B{band}.TIF"), dn, crs, transform, **profile)
    if with_pan:
        pan_rho = np.mean(rho[[2, 3]], axis=0)
        pan = np.clip(np.round((pan_rho * sin_e - REFLECTANCE_ADD) / REFLECTANCE_MULT), 1, 65535)
        pan = np.repeat(np.repeat(pan.astype(np.uint16), 2, axis=0), 2, axis=1)
        pan[np.repeat(np.repeat(fill, 2, axis=0), 2, axis=1)] = 0
        _write_tif(Path(f"{stem}_B8.TIF"), pan, crs, transform @ Affine.scale(0.5), **profile)
    temperature = sample.temperature()
    for band, (k1, k2) in THERMAL_K.items():
        t = temperature - (1.5 if band == 11 else 0.0)
        radiance = k1 / (np.exp(k2 / t) - 1.0)
        dn = np.clip(np.round((radiance - RADIANCE_ADD) / RADIANCE_MULT), 1, 65535).astype(np.uint16)
        dn[fill] = 0
        _write_tif(Path(f"{stem}_B{band}.TIF"), dn, crs, transform, **profile)


def _write_labels(stem: Path, sample: Sample, fill: np.ndarray, crs: CRS, transform: Affine, biome_mask: bool,
                  gt38: bool) -> None:
    """The Biome fixedmask (``<stem>_fixedmask.hdr/.img``) and the 38-Cloud ground truth, if asked for."""
    classes = sample.biome_classes()
    classes[fill] = BIOME_FILL
    if biome_mask:
        import spectral.io.envi as envi

        envi.save_image(f"{stem}_fixedmask.hdr", classes, dtype=np.uint8, interleave="bsq", ext=".img", force=True,
                        metadata={"description": "fixedmask"})
    if gt38:
        gt = np.where((classes == BIOME_CLOUD) | (classes == BIOME_THIN), 255, 0).astype(np.uint8)
        _write_tif(stem.parent / f"edited_corrected_gts{stem.name}.TIF", gt, crs, transform)


def write_landsat8_scene(dest_dir: str | os.PathLike, shape: tuple[int, int] = (512, 512), seed: int = 0,
                         collection: int = 1, satellite: int = 8, lat: float = 45.0, lon: float = 5.0,
                         acquired: dt.datetime | None = None, biome: str = "GrassCrops",
                         cloud_cover: float = 0.35, thin_cover: float | None = None,
                         with_biome_mask: bool = False, with_38cloud_gt: bool = False, with_pan: bool = True,
                         tilt_deg: float = 12.0, scene_id: str | None = None) -> Path:
    """Write a synthetic Landsat-8 L1 scene folder ``<dest_dir>/<scene ID>/`` (atomically) and return it.

    The scene is centred on (lat, lon) in its UTM zone; bands are uint16 GeoTIFFs (B8 at 15 m when
    ``with_pan``), with the quality band, the MTL and optionally the Biome fixedmask (ENVI) and the
    38-Cloud ground truth. ``collection`` 0 writes a pre-collection scene (the Biome generation), 1 and 2
    the USGS collections, each with its own scene ID, MTL and quality-band layout; ``satellite`` 9 writes a
    Landsat 9 (OLI-2/TIRS-2, same bands) Collection 2 scene.
    """
    _check_generation(collection, satellite)
    acquired = acquired or DEFAULT_LANDSAT_TIME
    world = World(seed, lat, lon, biome=biome, cloud_cover=cloud_cover, thin_cover=thin_cover)
    crs = world.crs
    height, width = shape
    cx, cy = world.origin
    x0 = np.round((cx - 15.0 * width) / 30.0) * 30.0
    y0 = np.round((cy + 15.0 * height) / 30.0) * 30.0
    transform = Affine(30.0, 0.0, x0, 0.0, -30.0, y0)
    path_row = _path_row(seed)
    scene_id = scene_id or landsat8_scene_id(collection, seed, acquired, satellite)
    elevation, azimuth = sun_position(lat, acquired)
    log.info("Synthetic Landsat-%d %s scene %s (%dx%d, %s, %.0f%% cloud)", satellite,
             quality.GENERATION_NAMES[collection], scene_id, height, width, biome, 100 * cloud_cover)

    sample = _sample_utm(world, transform, shape, acquired, step=4 if min(shape) >= 64 else 1)
    rng = np.random.default_rng(seed + 1)
    fill = ~_footprint(shape, tilt_deg)
    sin_e = np.sin(np.deg2rad(elevation))
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    # plain strips written in order, as USGS's files are (tools that memory-map them read these too); GDAL
    # otherwise writes the all-fill first rows at the end of the file
    profile = (dict(WRITE_EMPTY_TILES_SYNCHRONOUSLY="YES") if collection < quality.COLLECTION_2
               else dict(tiled=True, blockxsize=256, blockysize=256, compress="deflate"))
    with atomic_dir(dest_dir / scene_id) as folder:
        grid = (crs, transform, profile)
        _write_bands(folder / scene_id, sample, fill, sin_e, rng, grid, with_pan)
        cloud = sample.operational_cloud(0.35)
        qa = quality.encode(collection, fill, cloud, sample.shadow, sample.surface == SNOW, sample.surface == WATER)
        _write_tif(folder / f"{scene_id}_{quality.QUALITY_BAND[collection]}.TIF", qa, crs, transform, **profile)
        (folder / f"{scene_id}_MTL.txt").write_text(format_mtl(_mtl_tree(
            collection, satellite, seed, scene_id, crs, transform, shape, acquired, elevation, azimuth,
            float(np.mean(sample.opacity[~fill] >= 0.5)) if (~fill).any() else 0.0, path_row, with_pan)))
        _write_labels(folder / scene_id, sample, fill, crs, transform, with_biome_mask, with_38cloud_gt)
    return dest_dir / scene_id


def write_biome_dataset(root: str | os.PathLike, n_biomes: int = 4, scenes_per_biome: int = 3,
                        shape: tuple[int, int] = (256, 256), seed: int = 0) -> Path:
    """Biome-like data set ``<root>/<biome>/<scene ID>/`` with fixedmasks, varied places and cloud covers.

    As in the real Biome set, each biome has nearly clear, mid-cloudy and cloudy scenes; thin cloud
    comes with the weather (a quarter of the thick cover), so that nearly clear scenes give clear patches.
    """
    if not 1 <= n_biomes <= len(BIOMES):
        raise ValueError(f"n_biomes must be between 1 and {len(BIOMES)}")
    root = Path(root)
    covers = (0.02, 0.15, 0.35, 0.6)
    rng = np.random.default_rng(seed)
    for b, biome in enumerate(sorted(BIOMES)[:n_biomes]):
        for s in range(scenes_per_biome):
            scene_seed = seed * 1000 + b * 50 + s
            lat = float(rng.uniform(-60, 70))
            lon = float(rng.uniform(-170, 170))
            when = dt.datetime(2014 + s % 3, 1 + (b * 3 + s) % 12, 10, 10, 30, tzinfo=dt.timezone.utc)
            cover = covers[(s + b) % len(covers)]
            write_landsat8_scene(root / biome, shape=shape, seed=scene_seed, lat=lat, lon=lon, acquired=when,
                                 biome=biome, cloud_cover=cover, thin_cover=cover / 4, with_biome_mask=True,
                                 with_pan=False, collection=quality.PRE_COLLECTION)
    return root


def probav_product_name(acquired: dt.datetime, camera: int = 2, resolution: str = "333M") -> str:
    return f"PROBAV_L2A_{acquired:%Y%m%d_%H%M%S}_{camera}_{resolution}_V101.HDF5"


def _status_map(sample: Sample, no_coverage: np.ndarray) -> np.ndarray:
    """The SM status map of a sampled scene: shadow, snow and cloud classes, land bit, all radiometry good."""
    status = np.zeros(no_coverage.shape, np.uint16)
    status[sample.shadow] = 0b001
    status[sample.surface == SNOW] = 0b100
    status[sample.operational_cloud(0.45)] = 0b011
    sm = status | ((sample.surface != WATER).astype(np.uint16) << 3) | np.uint16(0xFF0)
    sm[no_coverage] = 0
    return sm


def write_probav_product(dest_dir: str | os.PathLike, shape: tuple[int, int] = (512, 512), seed: int = 0,
                         lat: float = 45.0, lon: float = 5.0, acquired: dt.datetime | None = None,
                         camera: int = 2, resolution: str = "333M", biome: str = "GrassCrops",
                         cloud_cover: float = 0.35, domain_shift: bool = True,
                         with_truth: bool = False) -> Path:
    """Write a synthetic Proba-V Level-2A product centred on (lat, lon), atomically, and return its path.

    With ``domain_shift`` the radiometry differs from Landsat's (PV_GAIN, PV_OFFSET, PV_CURVATURE).
    With ``with_truth`` the true cloud mask is written beside it as ``<stem>_truth.tif``
    (uint8: 0 clear, 1 cloud, 255 no data).
    """
    if resolution not in RESOLUTION_STEPS:
        raise ValueError(f"unknown resolution {resolution!r}")
    acquired = acquired or DEFAULT_PROBAV_TIME
    world = World(seed, lat, lon, biome=biome, cloud_cover=cloud_cover)
    step = RESOLUTION_STEPS[resolution]
    height, width = shape
    lon0 = np.round((lon - step * width / 2) / step) * step
    lat0 = np.round((lat + step * height / 2) / step) * step
    transform = Affine(step, 0.0, float(lon0), 0.0, -step, float(lat0))
    log.info("Synthetic Proba-V product %dx%d at %.3f, %.3f (%s)", height, width, lat, lon, acquired)
    sample = _sample_grid(world, transform, WGS84, shape, acquired, step=8 if min(shape) >= 64 else 1)
    rho = sample.reflectance()
    by_band = dict(zip(SPECTRAL_BANDS, rho))
    pv = np.stack([BLUE_WEIGHTS[1] * by_band[1] + BLUE_WEIGHTS[2] * by_band[2], by_band[4], by_band[5],
                   by_band[6]])
    if domain_shift:
        pv = PV_GAIN[:, None, None] * pv + PV_OFFSET[:, None, None] + PV_CURVATURE[:, None, None] * pv ** 2
    rng = np.random.default_rng(seed + 2)
    pv = pv + rng.normal(0, 0.003, pv.shape).astype(np.float32)
    rr, cc = np.mgrid[0:height, 0:width]
    no_coverage = (cc + 0.35 * rr) > 1.15 * width   # the swath edge cuts a corner off
    dn = np.clip(np.round(pv * 2000.0), 0, 32767).astype(np.int16)
    dn[:, no_coverage] = -1

    sm = _status_map(sample, no_coverage)
    elevation, azimuth = sun_position(lat, acquired)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / probav_product_name(acquired, camera, resolution)
    with atomic_path(dest) as tmp, hdf5_writer(tmp) as f:
        end = acquired + dt.timedelta(seconds=29)
        f.attrs["OBSERVATION_START_DATE"] = np.array([acquired.strftime("%Y-%m-%d").encode()])
        f.attrs["OBSERVATION_START_TIME"] = np.array([acquired.strftime("%H:%M:%S").encode()])
        f.attrs["OBSERVATION_END_DATE"] = np.array([end.strftime("%Y-%m-%d").encode()])
        f.attrs["OBSERVATION_END_TIME"] = np.array([end.strftime("%H:%M:%S").encode()])
        f.attrs["MAP_PROJECTION_WKT"] = np.array([WGS84.to_wkt(version="WKT1_GDAL").encode()])
        write_toa_bands(f, dn, mapping_from_transform(transform), np.float32(2000.0), np.float32(0.0))
        create_grid_dataset(f, SM_PATH, shape, shuffle=False, data=sm)
        geo_shape = (height // 10 + 1, width // 10 + 1)
        for name, value in (("SZA", 90 - elevation), ("SAA", azimuth / 2), ("VZA", 20.0), ("VAA", 100.0)):
            f.create_dataset(f"LEVEL2A/GEOMETRY/{name}", data=np.full(geo_shape, round(value), np.uint8))
    if with_truth:
        truth = (sample.opacity >= CLOUD_CLASS_OPACITY).astype(np.uint8)
        truth[no_coverage] = 255
        with atomic_path(dest.with_name(dest.stem + "_truth.tif")) as tmp:
            _write_tif(tmp, truth, WGS84, transform, nodata=255)
    return dest
