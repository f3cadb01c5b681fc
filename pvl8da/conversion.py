"""Physically based Landsat-8 -> Proba-V transformation (SPEC §2), streamed over row windows.

The 30 m scene is read in windows of rows with a 7-row halo; each window is turned into rows of the
90 m Proba-V-like raster (spectral combination, Gaussian PSF with stride 3, invalid fraction, labels).
Only the 90 m rasters (1/9 of the scene) are held in memory; they are then reprojected to the
Proba-V lat/lon grid and written as a Proba-V look-alike HDF5 product.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from pvl8da.storage.atomic import atomic_outputs, require_free_space
from pvl8da.errors import InputError
from pvl8da.storage import provenance
from pvl8da.storage.hdf5 import hdf5_writer
from pvl8da.sensors.landsat8 import Landsat8Scene, open_scene
from pvl8da.sensors.probav import (LANDSAT_CLOUDS, PV_BANDS, create_grid_dataset, mapping_from_transform,
                                   write_toa_bands)

log = logging.getLogger(__name__)

# Spectral combination of Landsat-8 bands into the Proba-V bands (BLUE, RED, NIR, SWIR).
BLUE_WEIGHTS = {1: 0.24916137667938665, 2: 0.7508386233206134}
BAND_SOURCES = {"BLUE": (1, 2), "RED": (4,), "NIR": (5,), "SWIR": (6,)}
# Standard deviation (metres) of the Gaussian point spread function of each Proba-V band.
PSF_SIGMA_M = {"BLUE": 46.1236, "RED": 50.0845, "NIR": 46.7560, "SWIR": 80.7639}
PSF_SIZE = 15
PSF_HALO = PSF_SIZE // 2
LANDSAT_PIXEL_M = 30.0
STRIDE = 3
# Pixel step (degrees) of the Proba-V products at each resolution.
PV_STEP_333M = 0.00297619047619
RESOLUTION_STEPS = {"333M": PV_STEP_333M, "100M": PV_STEP_333M / 3, "1KM": PV_STEP_333M * 3}
INVALID_KERNEL = np.array([[0.5, 1.0, 0.5], [1.0, 1.5, 1.0], [0.5, 1.0, 0.5]])
INVALID_THRESHOLD = 0.2
TOA_SCALE = 2000
TOA_INVALID_DN = -2000
WGS84 = CRS.from_epsg(4326)
CLASS_IMAGE = {"landsat8": "Landsat8", "biome": "Biome", "38c": "38-Cloud"}


def psf_kernel_1d(sigma_m: float, size: int = PSF_SIZE, pixel_m: float = LANDSAT_PIXEL_M) -> np.ndarray:
    """One axis of the normalised 2-D Gaussian PSF (the 2-D kernel is the outer product of two of these)."""
    distance = (np.arange(size) - size // 2) * pixel_m
    kernel = np.exp(-0.5 * (distance / sigma_m) ** 2)
    return kernel / kernel.sum()


BLOCK = 16  # output rows/columns per banded matrix product
#: 90 m rows per window: a window of a 7700-column scene holds about 20 MB per band in flight.
WINDOW_ROWS = 64


@lru_cache(maxsize=64)
def _banded(weights: tuple[float, ...], n_out: int) -> np.ndarray:
    """(n_out, STRIDE*(n_out-1) + taps) matrix whose row i holds the weights from column STRIDE*i."""
    taps = len(weights)
    band = np.zeros((n_out, STRIDE * (n_out - 1) + taps), np.float32)
    for i in range(n_out):
        band[i, STRIDE * i:STRIDE * i + taps] = weights
    return band


def strided_rows(x: np.ndarray, weights: np.ndarray, n_out: int) -> np.ndarray:
    """out[j] = sum_k weights[k] * x[STRIDE*j + k] for rows j < n_out of an already padded 2-D array.

    Computed as products of small banded matrices with blocks of rows, so that BLAS does the work.
    """
    w = tuple(float(v) for v in weights)
    out = np.empty((n_out, x.shape[1]), np.float32)
    for j0 in range(0, n_out, BLOCK):
        band = _banded(w, min(BLOCK, n_out - j0))
        np.matmul(band, x[STRIDE * j0:STRIDE * j0 + band.shape[1]], out=out[j0:j0 + band.shape[0]])
    return out


def strided_cols(x: np.ndarray, weights: np.ndarray, n_out: int) -> np.ndarray:
    """Like :func:`strided_rows` along the columns."""
    w = tuple(float(v) for v in weights)
    out = np.empty((x.shape[0], n_out), np.float32)
    for j0 in range(0, n_out, BLOCK):
        band = _banded(w, min(BLOCK, n_out - j0)).T
        np.matmul(x[:, STRIDE * j0:STRIDE * j0 + band.shape[0]], band, out=out[:, j0:j0 + band.shape[1]])
    return out


def box_downscale(x: np.ndarray, kernel: np.ndarray, rows_out: int, cols_out: int) -> np.ndarray:
    """3x3 kernel with stride 3 over an array padded by one pixel: the windows tile the array exactly."""
    blocks = x[:STRIDE * rows_out, :STRIDE * cols_out].reshape(rows_out, STRIDE, cols_out, STRIDE)
    return np.einsum("iajb,ab->ij", blocks, kernel.astype(np.float32), optimize=True)


def labels_invalid_weight(invalid_fraction: np.ndarray, label_fill) -> np.ndarray:
    """The labels' invalid weight of SPEC §2.6, the unnormalised 3×3 sum of "label fill or image invalid", from
    the invalid fraction (normalised sum of the image's invalid mask) and the label fill on valid pixels
    (unnormalised sum): the two masks are disjoint and the kernel is linear, at 90 m and after the warp alike."""
    return INVALID_KERNEL.sum(dtype=np.float32) * invalid_fraction + label_fill


@dataclass
class Downscaled:
    """The 90 m rasters of a scene in one (n, H90, W90) float32 stack: the four Proba-V bands (TOA),
    the invalid fraction and, for labelled scenes, the cloud fraction and the label fill on valid pixels (from
    which :func:`labels_invalid_weight` gives the labels' invalid weight)."""

    layers: np.ndarray
    transform: Affine
    crs: CRS

    @property
    def bands(self) -> np.ndarray:
        return self.layers[:4]

    @property
    def invalid_fraction(self) -> np.ndarray:
        return self.layers[4]

    @property
    def labels(self) -> np.ndarray | None:
        return self.layers[5] if len(self.layers) > 5 else None

    @property
    def label_fill(self) -> np.ndarray | None:
        """Unnormalised 3×3 sum of the label fill on pixels the image has valid (zero for every scene type
        here, whose labels are filled exactly where the image is invalid)."""
        return self.layers[6] if len(self.layers) > 6 else None

    @property
    def labels_invalid(self) -> np.ndarray | None:
        """The labels' invalid weight at 90 m (SPEC §2.6)."""
        if self.labels is None:
            return None
        return labels_invalid_weight(self.invalid_fraction, self.label_fill)


def _padded_rows(read, row0: int, row1: int, pad: int, n_rows: int, mode: str, pad_cols: bool = True,
                 **pad_kw) -> np.ndarray:
    """Rows [row0 - pad, row1 + pad) of a raster, padded past the raster's top and bottom edges (and by ``pad``
    columns on each side unless ``pad_cols`` is false); read as is where nothing needs padding."""
    start, stop = max(row0 - pad, 0), min(row1 + pad, n_rows)
    block = read(start, stop)
    before, after = start - (row0 - pad), (row1 + pad) - stop
    widths = ((before, after), (pad, pad) if pad_cols else (0, 0))
    return np.pad(block, widths, mode=mode, **pad_kw) if any(sum(w) for w in widths) else block


def _downscale_rows(scene: Landsat8Scene, out_row0: int, out_row1: int, kernels: dict, out: np.ndarray) -> None:
    """Rows [out_row0, out_row1) of every 90 m layer of a scene into ``out`` (layers as in :class:`Downscaled`;
    labels when it has 7)."""
    n_rows, n_cols = scene.shape
    cols_out = -(-n_cols // STRIDE)
    rows_out = out_row1 - out_row0
    row0, row1 = STRIDE * out_row0, min(STRIDE * out_row1, n_rows)

    def window(start: int, stop: int) -> Window:
        return Window(0, start, n_cols, stop - start)

    def read_invalid(start, stop):
        return scene.invalid(window(start, stop))

    invalid = read_invalid(max(row0 - PSF_HALO, 0), min(row1 + PSF_HALO, n_rows))
    inv_start = max(row0 - PSF_HALO, 0)

    def read_toa(band):
        def read(start, stop):
            toa = scene.toa(band, window(start, stop))
            np.putmask(toa, invalid[start - inv_start:stop - inv_start], 0)
            return toa
        return read

    extra = STRIDE * rows_out - (row1 - row0)  # rows past the scene's bottom needed by the last window
    for b, name in enumerate(PV_BANDS):
        rows = None
        for source in BAND_SOURCES[name]:
            padded = _padded_rows(read_toa(source), row0, row1 + extra, PSF_HALO, n_rows, "reflect", pad_cols=False)
            part = strided_rows(padded, kernels[name] * BLUE_WEIGHTS.get(source, 1.0), rows_out)
            rows = part if rows is None else rows + part
        # the columns are reflect-padded after the row pass: the same values (a row pass acts on each column
        # alone), on a third of the rows
        out[b] = strided_cols(np.pad(rows, ((0, 0), (PSF_HALO, PSF_HALO)), mode="reflect"), kernels[name], cols_out)

    def read_inv(start, stop):
        return invalid[start - inv_start:stop - inv_start].astype(np.float32)

    inv_padded = _padded_rows(read_inv, row0, row1 + extra, 1, n_rows, "constant", constant_values=1.0)
    out[4] = box_downscale(inv_padded, INVALID_KERNEL / INVALID_KERNEL.sum(), rows_out, cols_out)
    if len(out) == 5:
        return

    def read_labels(start, stop):
        return scene.labels(window(start, stop))

    lab_padded = _padded_rows(read_labels, row0, row1 + extra, 1, n_rows, "constant", constant_values=0.5)
    out[5] = box_downscale(lab_padded, INVALID_KERNEL / INVALID_KERNEL.sum(), rows_out, cols_out)
    out[6] = box_downscale(((lab_padded == 0.5) & (inv_padded == 0)).astype(np.float32), INVALID_KERNEL,
                           rows_out, cols_out)


def downscale_scene(scene: Landsat8Scene, window_rows: int = WINDOW_ROWS, workers: int = 2,
                    progress: bool = True) -> Downscaled:
    """The 90 m Proba-V-like rasters of a scene, computed in windows of ``window_rows`` output rows."""
    if window_rows < 3:
        raise ValueError("window_rows must be at least 3")
    n_rows, n_cols = scene.shape
    rows90, cols90 = -(-n_rows // STRIDE), -(-n_cols // STRIDE)
    kernels = {name: psf_kernel_1d(sigma) for name, sigma in PSF_SIGMA_M.items()}
    has_labels = bool(scene.label_paths())
    layers = np.empty((7 if has_labels else 5, rows90, cols90), np.float32)

    starts = list(range(0, rows90, window_rows))
    # A last window with fewer than 3 output rows cannot reflect-pad its halo: merge it into the previous one.
    if len(starts) > 1 and rows90 - starts[-1] < 3:
        starts.pop()
    bounds = [(s, starts[i + 1] if i + 1 < len(starts) else rows90) for i, s in enumerate(starts)]

    def work(span):  # each window writes its own rows of the stack
        _downscale_rows(scene, span[0], span[1], kernels, layers[:, span[0]:span[1]])

    # Parallelism comes from the window threads: BLAS's own threads would oversubscribe the cores.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in tqdm(pool.map(work, bounds), total=len(bounds), disable=not progress,
                      desc=f"PSF {scene.scene_id}", unit="window"):
            pass

    return Downscaled(layers, scene.transform @ Affine.scale(STRIDE), scene.crs)


def pv_grid(downscaled: Downscaled, resolution: str) -> tuple[Affine, int, int]:
    """Lat/lon grid (transform, width, height) of the product, as rasterio's default transform computes it."""
    if resolution not in RESOLUTION_STEPS:
        raise InputError(f"unknown resolution {resolution!r}; expected one of {', '.join(RESOLUTION_STEPS)}")
    height, width = downscaled.invalid_fraction.shape
    t = downscaled.transform
    left, top = t.c, t.f
    right, bottom = left + t.a * width, top + t.e * height
    step = RESOLUTION_STEPS[resolution]
    return calculate_default_transform(downscaled.crs, WGS84, width, height, left, bottom, right, top,
                                       resolution=(step, step))


def _reproject(layers: np.ndarray, downscaled: Downscaled, dst_transform: Affine, shape: tuple[int, int],
               threads: int) -> np.ndarray:
    """Lanczos reprojection of a (n, H90, W90) stack onto the lat/lon grid (nodata -1), a layer at a time.

    One layer per warp: rasterio copies the source of a warp into a GDAL dataset, so a warp of the whole stack
    would hold it twice. GDAL scales the Lanczos kernel from each chunk's extent; a single layer of a whole
    scene (7700², also at 100M) is warped in one chunk, so every pixel gets the kernel of the whole grid.
    """
    out = np.full((layers.shape[0],) + shape, -1.0, np.float32)
    for layer, dest in zip(layers, out):
        reproject(layer, dest, src_transform=downscaled.transform, src_crs=downscaled.crs, src_nodata=None,
                  dst_transform=dst_transform, dst_crs=WGS84, dst_nodata=-1.0,
                  resampling=Resampling.lanczos, num_threads=threads)
    return out


@dataclass
class ProbaVLike:
    """A Landsat scene on the Proba-V lat/lon grid."""

    toa: np.ndarray              # (4, H, W) float32 reflectance
    invalid: np.ndarray          # (H, W) bool
    clouds: np.ndarray | None    # (H, W) float32 cloud fraction in [0, 1], -1 invalid
    transform: Affine


def to_probav_grid(downscaled: Downscaled, resolution: str = "333M", threads: int = 2) -> ProbaVLike:
    """Reproject the 90 m rasters to the Proba-V grid of ``resolution`` with Lanczos resampling."""
    dst_transform, width, height = pv_grid(downscaled, resolution)
    layers = downscaled.layers
    # the label fill on valid pixels is zero for every scene type here: its warp would be zeros (or nodata where
    # the image's invalid fraction is nodata too), so it is skipped
    fill_on_valid = downscaled.label_fill is not None and downscaled.label_fill.any()
    warped = _reproject(layers if fill_on_valid else layers[:6], downscaled, dst_transform, (height, width), threads)
    toa, inv = warped[:4], warped[4]
    invalid = (inv > INVALID_THRESHOLD) | (inv == -1.0)
    clouds = None
    if downscaled.labels is not None:
        lab = warped[5]
        lab_inv = labels_invalid_weight(inv, warped[6] if fill_on_valid else 0)
        lab_invalid = (lab_inv > INVALID_THRESHOLD) | (lab == -1.0) | invalid
        clouds = np.clip(lab, 0, 1)
        clouds[lab_invalid] = -1.0
    return ProbaVLike(toa, invalid, clouds, dst_transform)


def write_product(product: ProbaVLike, path: str | os.PathLike, scene_id: str, acquired: dt.datetime,
                  class_image: str, record: dict | None = None) -> None:
    """Write the Proba-V look-alike HDF5 (SPEC §2.7) at ``path``, with a provenance ``record`` if given."""
    mapping = mapping_from_transform(product.transform)
    t = product.transform
    geotransform = f"{t.c:f} {t.a:f} {t.b:f} {t.f:f} {t.d:f} {t.e:f}"
    stamp = acquired.strftime("%Y-%m-%d %H:%M:%S")
    with hdf5_writer(path) as f:
        f.attrs["START_DATE"] = stamp
        f.attrs["END_DATE"] = stamp
        f.attrs["MAP_PROJECTION"] = WGS84.to_wkt(version="WKT1_GDAL")
        f.attrs["image"] = scene_id
        f.attrs["class_image"] = class_image
        if record is not None:
            provenance.write_hdf5(f, record)
        f.create_group("crs").attrs["GeoTransform"] = np.array([geotransform.encode()])
        write_toa_bands(f, (_toa_dn(toa, product.invalid) for toa in product.toa), mapping, TOA_SCALE, 0)
        if product.clouds is not None:
            create_grid_dataset(f, LANDSAT_CLOUDS, product.clouds.shape, data=product.clouds,
                                attrs={"MAPPING": mapping})


def _toa_dn(toa: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """int16 DN of a reflectance band (× TOA_SCALE), TOA_INVALID_DN where invalid."""
    dn = np.clip(np.round(toa * TOA_SCALE), np.iinfo(np.int16).min + 1, np.iinfo(np.int16).max).astype(np.int16)
    dn[invalid] = TOA_INVALID_DN
    return dn


#: Upper bound of a product's size per pixel: four int16 bands and the float32 cloud fraction, uncompressed.
PRODUCT_BYTES_PER_PIXEL = 4 * 2 + 4


def check_pixel_size(scene: Landsat8Scene) -> None:
    """Raise InputError unless the scene has 30 m pixels, the size the PSF of SPEC §2 is defined for."""
    x, y = scene.pixel_size
    if not (math.isclose(x, LANDSAT_PIXEL_M, rel_tol=1e-6) and math.isclose(y, LANDSAT_PIXEL_M, rel_tol=1e-6)):
        raise InputError(f"{scene.band_path(1)}: pixels of {x:g} x {y:g} m; the conversion to Proba-V needs "
                         f"Landsat's {LANDSAT_PIXEL_M:g} m pixels (its PSF is defined for them)")


def check_has_valid_pixel(scene: Landsat8Scene, rows: int = 1024) -> None:
    """InputError naming the scene folder when every pixel is invalid (quality-band fill; Biome: mask fill).
    Reads the invalid mask in windows of ``rows`` rows from the scene's middle outwards, up to the first valid pixel."""
    n_rows, n_cols = scene.shape
    starts = sorted(range(0, n_rows, rows), key=lambda start: abs(start + rows / 2 - n_rows / 2))
    if any(not scene.invalid(Window(0, start, n_cols, min(rows, n_rows - start))).all() for start in starts):
        return
    raise InputError(f"{scene.folder}: scene {scene.scene_id} has no valid pixel (all fill); nothing to convert")


def conversion_outputs(product: Path, quicklook: bool) -> tuple[Path, ...]:
    """The files a conversion writes: the product, and its quicklook ``<product>.png`` if asked for."""
    return (product, product.with_suffix(".png")) if quicklook else (product,)


def output_name(scene_id: str, resolution: str) -> str:
    return f"{scene_id}_{resolution}.HDF5"


def convert_scene(l8img: str | os.PathLike, outfolder: str | os.PathLike, resolution: str = "333M",
                  type_product: str = "landsat8", window_rows: int = WINDOW_ROWS, workers: int = 2,
                  progress: bool = True, record: dict | None = None, quicklook: bool = False) -> Path:
    """Convert a Landsat-8 scene folder into ``<outfolder>/<scene ID>_<resolution>.HDF5`` (with ``quicklook``,
    also ``<product>.png``), committed together at the end; ``record``: the provenance the product keeps
    (:mod:`pvl8da.storage.provenance`)."""
    if resolution not in RESOLUTION_STEPS:
        raise InputError(f"unknown resolution {resolution!r}; expected one of {', '.join(RESOLUTION_STEPS)}")
    scene = open_scene(l8img, type_product)
    check_pixel_size(scene)
    check_has_valid_pixel(scene)
    outfolder = Path(outfolder)
    outfolder.mkdir(parents=True, exist_ok=True)
    dest = outfolder / output_name(scene.scene_id, resolution)
    log.info("Converting %s (%s, %dx%d) to Proba-V %s", scene.scene_id, type_product, *scene.shape, resolution)
    downscaled = downscale_scene(scene, window_rows=window_rows, workers=workers, progress=progress)
    product = to_probav_grid(downscaled, resolution, threads=workers)
    if product.invalid.all():
        log.warning("%s: no valid pixel on the Proba-V %s grid (the scene's valid pixels are too few or too "
                    "scattered); the product holds only invalid pixels", scene.folder, resolution)
    require_free_space(outfolder, PRODUCT_BYTES_PER_PIXEL * product.invalid.size, f"the product of {scene.scene_id}")
    with atomic_outputs(*conversion_outputs(dest, quicklook)) as (tmp, *tmp_png):
        write_product(product, tmp, scene.scene_id, scene.acquisition_time, CLASS_IMAGE[type_product], record)
        if quicklook:
            from pvl8da.plots.conversion import conversion_quicklook

            conversion_quicklook(scene, tmp, tmp_png[0])
    log.info("Wrote %s (%dx%d, %.1f%% valid)", dest, *product.invalid.shape, 100 * (1 - product.invalid.mean()))
    return dest
