"""Proba-V Level-2A products (HDF5) and Landsat-as-Proba-V products: reading, decoding, writing.

SPEC §3: ``LEVEL2A/RADIOMETRY/<BAND>/TOA`` int16 with SCALE/OFFSET (reflectance = (DN − OFFSET)/SCALE),
``LEVEL2A/QUALITY/SM`` status map, MAPPING band attribute with the lat/lon grid.
SPEC §2.7: Landsat-as-Proba-V products share the band layout, mark invalid pixels with DN ≤ −1000,
carry ``CM_RESAMPLED`` (soft cloud fraction, −1 invalid) and have no SM.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
from affine import Affine

from pvl8da.errors import InputError
from pvl8da.storage.hdf5 import close_safely

log = logging.getLogger(__name__)

PV_BANDS = ("BLUE", "RED", "NIR", "SWIR")
SM_PATH = "LEVEL2A/QUALITY/SM"
LANDSAT_CLOUDS = "CM_RESAMPLED"
LANDSAT_INVALID_DN = -1000
#: Hash-table slots of a dataset's chunk cache (a prime, well above the chunks a cache holds).
CHUNK_CACHE_SLOTS = 10007
CRS = "EPSG:4326"
FILENAME_RE = re.compile(
    r"PROBAV_L2A_(?P<date>\d{8})_(?P<time>\d{6})_(?P<camera>[123])_(?P<res>333M|100M|1KM)_V(?P<version>\d{3})")

#: SM bits 0-2 classes.
SM_CLEAR, SM_SHADOW, SM_UNDEFINED, SM_CLOUD, SM_SNOW = 0, 1, 2, 3, 4


def band_path(band: str) -> str:
    """HDF5 path of a band's TOA dataset."""
    return f"LEVEL2A/RADIOMETRY/{band}/TOA"


def create_grid_dataset(group: h5py.Group, name: str, shape: tuple[int, int], shuffle: bool = True,
                        attrs: dict | None = None, **options) -> h5py.Dataset:
    """A 2-D dataset on a product's grid as every product layer is stored: chunks of up to 256², gzip level 1, the
    byte shuffle unless ``shuffle`` is false, and ``attrs`` in that order; ``options`` go to h5py (data, dtype, ...)."""
    ds = group.create_dataset(name, shape=shape, chunks=_chunks(shape), compression="gzip", compression_opts=1,
                              shuffle=shuffle, **options)
    for key, value in (attrs or {}).items():
        ds.attrs[key] = value
    return ds


def write_toa_bands(group: h5py.Group, bands: Iterable[np.ndarray], mapping: np.ndarray, scale, offset) -> None:
    """The TOA datasets of PV_BANDS, in that order (int16 DN, attributes SCALE, OFFSET and MAPPING). ``scale`` and
    ``offset`` are stored with their own type: Proba-V's products hold float32, the Landsat-as-Proba-V ones integers."""
    for band, dn in zip(PV_BANDS, bands, strict=True):
        create_grid_dataset(group, band_path(band), dn.shape, data=dn,
                            attrs={"SCALE": scale, "OFFSET": offset, "MAPPING": mapping})


def mapping_from_transform(transform: Affine) -> np.ndarray:
    """The MAPPING attribute (byte strings) of a north-up lat/lon grid with this transform."""
    items = [
        "Geographic Lat/Lon", "0.5", "0.5",
        repr(float(transform.c)), repr(float(transform.f)),
        repr(float(transform.a)), repr(float(-transform.e)),
        "WGS84", "Degrees",
    ]
    return np.array([s.encode() for s in items])


def transform_from_mapping(mapping) -> Affine:
    """Affine transform (upper-left corner, degrees) from a MAPPING attribute: items 3-6 are
    upper-left longitude, upper-left latitude, x step and y step."""
    items = [m.decode() if isinstance(m, bytes) else str(m) for m in np.atleast_1d(mapping)]
    lon0, lat0, xstep, ystep = (float(v) for v in items[3:7])
    return Affine(xstep, 0.0, lon0, 0.0, -ystep, lat0)


@dataclass(frozen=True)
class StatusMap:
    """Decoded SM status map; per-band arrays are (H, W, 4) in PV_BANDS order."""

    clear: np.ndarray
    shadow: np.ndarray
    undefined: np.ndarray
    cloud: np.ndarray
    snow: np.ndarray
    land: np.ndarray
    good: np.ndarray
    covered: np.ndarray


def decode_sm(sm: np.ndarray) -> StatusMap:
    """Decode SM bits: 0-2 class, 3 land, 4-7 good SWIR/NIR/RED/BLUE, 8-11 coverage SWIR/NIR/RED/BLUE."""
    sm = np.asarray(sm).astype(np.uint16)
    cls = sm & 0b111
    # Bit 4 (and 8) is SWIR, bit 7 (and 11) BLUE: reverse to get PV_BANDS order.
    good = np.stack([(sm >> (7 - i)) & 1 for i in range(4)], axis=-1).astype(bool)
    covered = np.stack([(sm >> (11 - i)) & 1 for i in range(4)], axis=-1).astype(bool)
    return StatusMap(clear=cls == SM_CLEAR, shadow=cls == SM_SHADOW, undefined=cls == SM_UNDEFINED,
                     cloud=cls == SM_CLOUD, snow=cls == SM_SNOW, land=((sm >> 3) & 1).astype(bool),
                     good=good, covered=covered)


def encode_sm(cls: np.ndarray, land: np.ndarray | bool = False, good: np.ndarray | bool = True,
              covered: np.ndarray | bool = True) -> np.ndarray:
    """Inverse of decode_sm: class (0-4), land flag, per-band (…, 4) good and coverage flags."""
    cls = np.asarray(cls, dtype=np.uint16)
    shape = cls.shape + (4,)
    good = np.broadcast_to(np.asarray(good, bool), shape)
    covered = np.broadcast_to(np.asarray(covered, bool), shape)
    sm = cls | (np.asarray(land, np.uint16) << 3)
    for i in range(4):
        sm = sm | (good[..., i].astype(np.uint16) << (7 - i)) | (covered[..., i].astype(np.uint16) << (11 - i))
    return sm.astype(np.uint16)


def _slices(window, shape: tuple[int, int]) -> tuple[slice, slice]:
    """(row slice, col slice) clipped to the raster from None, a rasterio Window or a pair of slices
    (slices may have a step: every step-th pixel)."""
    if window is None:
        return slice(0, shape[0]), slice(0, shape[1])
    if hasattr(window, "toslices"):
        rows, cols = window.toslices()
    else:
        rows, cols = window
    rows = slice(*rows.indices(shape[0]))
    cols = slice(*cols.indices(shape[1]))
    return rows, cols


def _decode(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return value.decode() if isinstance(value, bytes) else str(value)


class _Product:
    """Common part of both product kinds: the four TOA bands, grid and window reading."""

    required: tuple[str, ...] = ()

    kind = "Proba-V"

    def __init__(self, path: str | Path, mode: str = "r"):
        self.path = Path(path)
        self._scale_offset: dict[str, tuple[float, float]] = {}
        self._datasets: dict[str, h5py.Dataset] = {}
        self._cache_rows: int | None = None
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found")
        try:
            self.file = h5py.File(self.path, mode)
        except OSError as exc:
            raise InputError(f"{self.path}: not an HDF5 file ({exc})") from exc
        try:
            self._validate()
        except Exception:
            self.file.close()
            raise

    def _validate(self) -> None:
        missing = [p for p in (*map(band_path, PV_BANDS), *self.required) if p not in self.file]
        if missing:
            raise InputError(f"{self.path}: not a {self.kind} product: missing {', '.join(missing)}")
        shapes = {self.file[band_path(b)].shape for b in PV_BANDS}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise InputError(f"{self.path}: TOA bands must be 2-D and of one shape, found {sorted(shapes)}")
        first = self.file[band_path(PV_BANDS[0])]
        if "MAPPING" not in first.attrs:
            raise InputError(f"{self.path}: band {PV_BANDS[0]} lacks the MAPPING attribute")
        for band in PV_BANDS:
            self.scale_offset(band)
        self.shape: tuple[int, int] = next(iter(shapes))
        self.transform: Affine = transform_from_mapping(first.attrs["MAPPING"])
        self.crs = CRS

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """Close the HDF5 file; a product being written is flushed first, or emptied if ``failed`` (a full
        disk must not crash the process: :mod:`pvl8da.storage.hdf5`)."""
        if self.file.id.valid and self.file.mode == "r":
            self._datasets.clear()
            self.file.close()
        else:
            close_safely(self.file, failed, drop=self._datasets.clear)

    def set_chunk_cache(self, rows: int | None) -> None:
        """Give each dataset opened from now on a chunk cache for a band of ``rows`` rows (at any row
        offset) across its whole width, in its own chunk shape and dtype (None: HDF5's default 1 MiB)."""
        self._cache_rows = rows
        self._datasets.clear()

    def dataset(self, name: str) -> h5py.Dataset:
        """An open dataset, kept open for the product's life so that its chunk cache survives between
        windows (a partly written chunk is compressed once, not once per window touching it)."""
        if name not in self._datasets:
            self._datasets[name] = self._open_cached(name) if self._cache_rows is not None else self.file[name]
        return self._datasets[name]

    def _open_cached(self, name: str) -> h5py.Dataset:
        """Open ``name`` with a chunk cache of ``_cache_rows`` rows (the cache of a dataset is set by its
        first opening, so no other handle to it may be open)."""
        probe = self.file[name]
        chunks, width, itemsize = probe.chunks, probe.shape[1], probe.dtype.itemsize
        del probe
        if chunks is None:
            return self.file[name]
        ch_rows, ch_cols = chunks
        nbytes = (-(-self._cache_rows // ch_rows) + 1) * ch_rows * -(-width // ch_cols) * ch_cols * itemsize
        access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
        access.set_chunk_cache(CHUNK_CACHE_SLOTS, nbytes, 0.75)
        return h5py.Dataset(h5py.h5d.open(self.file.id, name.encode(), access))

    def scale_offset(self, band: str) -> tuple[float, float]:
        """SCALE and OFFSET attributes of a band (OFFSET 0 when absent); InputError unless SCALE is finite and
        > 0 and OFFSET finite (any other SCALE turns every DN into an impossible reflectance)."""
        if band not in self._scale_offset:
            attrs = self.file[band_path(band)].attrs
            if "SCALE" not in attrs:
                raise InputError(f"{self.path}: band {band} lacks the SCALE attribute")
            scale, offset = float(np.ravel(attrs["SCALE"])[0]), float(np.ravel(attrs.get("OFFSET", 0.0))[0])
            if not (math.isfinite(scale) and scale > 0 and math.isfinite(offset)):
                raise InputError(f"{self.path}: band {band} has SCALE {scale:g} and OFFSET {offset:g}; reflectance "
                                 "= (DN - OFFSET) / SCALE needs a finite SCALE > 0 and a finite OFFSET")
            self._scale_offset[band] = (scale, offset)
        return self._scale_offset[band]

    def read_dn(self, band: str, window=None) -> np.ndarray:
        """Raw int16 DN of a band in a window."""
        return self.read(band_path(band), window)

    def read_dn_all(self, window=None) -> np.ndarray:
        """(H, W, 4) raw DN of the four bands."""
        return np.stack([self.read_dn(b, window) for b in PV_BANDS], axis=-1)

    def toa_from_dn(self, dn: np.ndarray) -> np.ndarray:
        """(…, 4) DN to float32 TOA reflectance with each band's SCALE/OFFSET."""
        scale, offset = np.array([self.scale_offset(b) for b in PV_BANDS], dtype=np.float32).T
        return (dn.astype(np.float32) - offset) / scale

    def read_toa(self, window=None) -> np.ndarray:
        """(H, W, 4) float32 TOA reflectance in PV_BANDS order (invalid pixels keep their raw value)."""
        return self.toa_from_dn(self.read_dn_all(window))

    def window_transform(self, window=None) -> Affine:
        """Geotransform of a window's upper-left pixel."""
        rows, cols = _slices(window, self.shape)
        return self.transform @ Affine.translation(cols.start, rows.start)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        west, north = self.transform @ (0, 0)
        east, south = self.transform @ (self.shape[1], self.shape[0])
        return west, south, east, north

    def write_dn(self, band: str, dn: np.ndarray, window=None) -> None:
        """Write int16 DN into a band (file opened with mode 'r+')."""
        rows, cols = _slices(window, self.shape)
        self.dataset(band_path(band))[rows, cols] = dn

    def dn_from_toa(self, band: str, toa: np.ndarray, invalid: np.ndarray, nodata: int = -1) -> np.ndarray:
        """Reflectance to int16 DN with the band's SCALE/OFFSET, clipped to [0, 2], ``nodata`` where invalid."""
        scale, offset = self.scale_offset(band)
        dn = np.rint(np.clip(toa, 0.0, 2.0) * scale + offset)
        return np.where(invalid, nodata, np.clip(dn, -32768, 32767)).astype(np.int16)

    def create_dataset(self, name: str, dtype=np.float32, fill=-1.0, **attrs) -> h5py.Dataset:
        """Create a chunked, compressed 2-D dataset on the product grid (with MAPPING) at the root."""
        if name in self.file:
            self._datasets.pop(name, None)
            del self.file[name]
        ds = create_grid_dataset(self.file, name, self.shape, dtype=dtype, fillvalue=fill,
                                 attrs={"MAPPING": self.file[band_path(PV_BANDS[0])].attrs["MAPPING"], **attrs})
        del ds  # closed, so that the handle returned is the product's own, with its chunk cache
        return self.dataset(name)

    def write(self, name: str, data: np.ndarray, window=None) -> None:
        """Write a window of an existing 2-D dataset."""
        rows, cols = _slices(window, self.shape)
        self.dataset(name)[rows, cols] = data

    def read(self, name: str, window=None) -> np.ndarray:
        """Read a window of any 2-D dataset of the product."""
        if name not in self.file:
            raise InputError(f"{self.path}: no dataset {name}")
        rows, cols = _slices(window, self.shape)
        try:
            return self.dataset(name)[rows, cols]
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read {name} rows {rows.start}:{rows.stop} ({exc}); "
                             "truncated or corrupt file?") from exc


def _any_band(mask: np.ndarray) -> np.ndarray:
    """Where a (…, bands) boolean array is true in any band (band by band: faster than ``any(axis=-1)``)."""
    out = mask[..., 0].copy()
    for band in range(1, mask.shape[-1]):
        out |= mask[..., band]
    return out


def _not_finite(dn: np.ndarray, toa: np.ndarray) -> np.ndarray:
    """Where any band of a (…, 4) reflectance is NaN or infinite: only float bands can hold them (integer DN with a
    finite SCALE > 0 and OFFSET give finite reflectance)."""
    if np.issubdtype(dn.dtype, np.integer):
        return np.zeros(dn.shape[:-1], bool)
    return _any_band(~np.isfinite(toa))


def _chunks(shape: tuple[int, int]) -> tuple[int, int]:
    return min(256, shape[0]), min(256, shape[1])


class ProbaVProduct(_Product):
    """A Proba-V Level-2A product: TOA bands, SM status map, grid and acquisition times."""

    required = (SM_PATH,)
    kind = "Proba-V L2A"

    def read_sm(self, window=None) -> np.ndarray:
        """Raw uint16 SM status map."""
        return self.read(SM_PATH, window)

    def status(self, window=None) -> StatusMap:
        """Decoded SM status map."""
        return decode_sm(self.read_sm(window))

    def invalid_from(self, dn: np.ndarray, sm: np.ndarray, toa: np.ndarray | None = None) -> np.ndarray:
        """Invalid where any band's reflectance is < 0 or not finite, or any coverage bit is 0 (``toa``: the
        reflectance of ``dn``, when already computed)."""
        toa = self.toa_from_dn(dn) if toa is None else toa
        return _any_band(toa < 0) | _not_finite(dn, toa) | ((sm >> 8) & 0xF != 0xF)

    def invalid(self, window=None) -> np.ndarray:
        """Boolean invalid mask of a window."""
        return self.invalid_from(self.read_dn_all(window), self.read_sm(window))

    def cloud_mask_sm(self, window=None) -> np.ndarray:
        """The operational cloud mask: SM bits 0-2 == 011."""
        return (self.read_sm(window) & 0b111) == SM_CLOUD

    def _time(self, which: str) -> datetime:
        attrs = self.file.attrs
        date_key, time_key = f"OBSERVATION_{which}_DATE", f"OBSERVATION_{which}_TIME"
        if date_key in attrs and time_key in attrs:
            text = f"{_decode(attrs[date_key])} {_decode(attrs[time_key])}"
            try:
                return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                log.warning("%s: unreadable %s/%s %r, using the file name", self.path, date_key, time_key, text)
        match = FILENAME_RE.search(self.path.name)
        if not match:
            raise InputError(f"{self.path}: no {date_key}/{time_key} attributes and the file name does not "
                             "follow PROBAV_L2A_YYYYMMDD_HHMMSS_<cam>_<res>_V<nnn>.HDF5")
        return datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")

    @property
    def start_time(self) -> datetime:
        """Acquisition start (root attributes, else the file name)."""
        return self._time("START")

    @property
    def end_time(self) -> datetime:
        """Acquisition end (root attributes, else the file name's start time)."""
        return self._time("END")


class LandsatAsProbaVProduct(_Product):
    """A Landsat-8 scene converted to the Proba-V grid (SPEC §2.7): no SM, DN ≤ −1000 invalid."""

    kind = "Landsat-as-Proba-V"

    def _validate(self) -> None:
        super()._validate()
        if SM_PATH in self.file:
            raise InputError(f"{self.path}: a Proba-V L2A product (it has {SM_PATH}), not a Landsat-as-Proba-V "
                             "product: run InferenceDA on it (--no-adaptation for the cloud model alone)")

    def invalid_from(self, dn: np.ndarray, toa: np.ndarray | None = None) -> np.ndarray:
        """Invalid where any band's DN is ≤ −1000 or its reflectance is not finite (``toa``: the reflectance
        of ``dn``, when already computed)."""
        invalid = _any_band(dn <= LANDSAT_INVALID_DN)
        if np.issubdtype(dn.dtype, np.integer):
            return invalid
        return invalid | _not_finite(dn, self.toa_from_dn(dn) if toa is None else toa)

    def invalid(self, window=None) -> np.ndarray:
        """Boolean invalid mask of a window."""
        return self.invalid_from(self.read_dn_all(window))

    def read_clouds(self, window=None) -> np.ndarray:
        """CM_RESAMPLED soft cloud fraction (float32, −1 invalid)."""
        return self.read(LANDSAT_CLOUDS, window).astype(np.float32)

    def _time(self, key: str) -> datetime:
        if key not in self.file.attrs:
            raise InputError(f"{self.path}: no {key} attribute")
        return datetime.strptime(_decode(self.file.attrs[key]), "%Y-%m-%d %H:%M:%S")

    @property
    def start_time(self) -> datetime:
        """Landsat acquisition time (START_DATE attribute)."""
        return self._time("START_DATE")

    @property
    def end_time(self) -> datetime:
        """END_DATE attribute."""
        return self._time("END_DATE")


def open_product(path: str | Path, mode: str = "r") -> _Product:
    """Open a Proba-V L2A product, or a Landsat-as-Proba-V product when it has no SM."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            has_sm = SM_PATH in f
    except (OSError, FileNotFoundError):
        has_sm = True  # let ProbaVProduct raise the clear error
    cls = ProbaVProduct if has_sm else LandsatAsProbaVProduct
    return cls(path, mode)


def copy_product(src: h5py.File, dst: h5py.File, recreate: tuple[str, ...]) -> None:
    """Copy every attribute, group and dataset of ``src`` into ``dst``; datasets in ``recreate``
    are created empty (same shape, dtype, attributes; gzip) instead, to be written by the caller."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Group):
            group = dst.require_group(name)
            for key, value in obj.attrs.items():
                group.attrs[key] = value
        elif name in recreate:
            ds = dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype, chunks=obj.chunks or _chunks(obj.shape),
                                    compression="gzip", compression_opts=1, shuffle=True)
            for key, value in obj.attrs.items():
                ds.attrs[key] = value
        else:
            src.copy(obj, dst, name=name)

    src.visititems(visit)
