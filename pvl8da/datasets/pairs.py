"""Pseudo-simultaneous Proba-V / Landsat-as-Proba-V pairs and the 64-pixel patch data set (SPEC §5).

A pair is a Proba-V L2A product and a Landsat-8 scene acquired within a time window of each other
over the same place. The Landsat scene, converted to a Proba-V look-alike (SPEC §2), is
co-registered onto the Proba-V grid; patches are cut where both products are fully valid and written
to ``simultaneous_landsatbiomeaspv_64_32.hdf5`` with datasets ``PV``, ``LU`` (N, S, S, 4) float32 TOA
reflectance, ``CLOUDS`` (N, S, S) float32 soft cloud fraction of the Landsat labels, ``PAIR`` (N,)
int32 index into the ``pair_pvimage`` / ``pair_l8img`` string lists and ``ROWCOL`` (N, 2) the patch's
upper-left pixel in its Proba-V product.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio.warp
from rasterio.enums import Resampling
from rasterio.windows import from_bounds

from pvl8da.storage.atomic import atomic_path
from pvl8da.storage.hdf5 import hdf5_writer
from pvl8da.errors import InputError
from pvl8da.sensors.probav import CRS, LANDSAT_CLOUDS, PV_BANDS, LandsatAsProbaVProduct, ProbaVProduct

log = logging.getLogger(__name__)

DATASET_NAME = "simultaneous_landsatbiomeaspv_64_32.hdf5"
DEFAULT_WINDOW = dt.timedelta(hours=2)
TYPE_PRODUCTS = ("landsat8", "biome", "38c")


@dataclass(frozen=True)
class Pair:
    """A Proba-V product and the Landsat-8 scene folder acquired with it."""

    pvimage: Path
    l8img: Path
    type_product: str = "biome"


def dataset_name(size: int = 64, stride: int = 32) -> str:
    """``simultaneous_landsatbiomeaspv_<size>_<stride>.hdf5``."""
    return f"simultaneous_landsatbiomeaspv_{size}_{stride}.hdf5"


def read_pairs_csv(path: str | os.PathLike) -> list[Pair]:
    """Pairs listed in a CSV with header ``pvimage,l8img,type_product`` (relative paths from the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: pairs CSV not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"pvimage", "l8img"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: CSV header lacks {sorted(missing)} (need pvimage,l8img,type_product)")
        pairs = []
        for line, row in enumerate(reader, start=2):
            kind = (row.get("type_product") or "biome").strip()
            if kind not in TYPE_PRODUCTS:
                raise InputError(f"{path}:{line}: type_product {kind!r} not in {TYPE_PRODUCTS}")
            pairs.append(Pair(path.parent / row["pvimage"].strip(), path.parent / row["l8img"].strip(), kind))
    if not pairs:
        raise InputError(f"{path}: no pair listed")
    return pairs


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def time_gap(pv_start: dt.datetime, pv_end: dt.datetime, l8_time: dt.datetime) -> dt.timedelta:
    """Time between a Landsat acquisition and a Proba-V acquisition interval (0 inside it)."""
    pv_start, pv_end, l8_time = _utc(pv_start), _utc(pv_end), _utc(l8_time)
    if l8_time < pv_start:
        return pv_start - l8_time
    return max(l8_time - pv_end, dt.timedelta(0))


def _intersection(a: tuple, b: tuple) -> tuple | None:
    west, south = max(a[0], b[0]), max(a[1], b[1])
    east, north = min(a[2], b[2]), min(a[3], b[3])
    return (west, south, east, north) if west < east and south < north else None


def discover_pairs(pv_folder: str | os.PathLike, l8_folder: str | os.PathLike,
                   window: dt.timedelta = DEFAULT_WINDOW, type_product: str = "biome") -> list[Pair]:
    """Pairs of ``PROBAV_L2A_*.HDF5`` products and Landsat-8 scene folders whose footprints overlap and
    whose acquisitions are within ``window``; each scene goes with its closest Proba-V product in time."""
    from pvl8da.sensors.landsat8 import open_scene

    pv_folder, l8_folder = Path(pv_folder), Path(l8_folder)
    products = []
    for path in sorted(pv_folder.glob("PROBAV_L2A_*.HDF5")):
        with ProbaVProduct(path) as pv:
            products.append((path, pv.bounds, pv.start_time, pv.end_time))
    pairs = []
    for folder in sorted(p for p in l8_folder.iterdir() if p.is_dir() and any(p.glob("*_MTL.txt"))):
        scene = open_scene(folder, type_product)
        height, width = scene.shape
        west, north = scene.transform @ (0, 0)
        east, south = scene.transform @ (width, height)
        bounds = rasterio.warp.transform_bounds(scene.crs, CRS, west, south, east, north)
        candidates = [(time_gap(start, end, scene.acquisition_time), path)
                      for path, pv_bounds, start, end in products if _intersection(bounds, pv_bounds)]
        candidates = [c for c in candidates if c[0] <= window]
        if candidates:
            pairs.append(Pair(min(candidates)[1], folder, type_product))
        else:
            log.info("%s: no Proba-V product in %s overlaps it within %s", folder.name, pv_folder, window)
    if not pairs:
        raise InputError(f"no pseudo-simultaneous pair found between {pv_folder} and {l8_folder} "
                         f"(overlapping footprints acquired within {window})")
    return pairs


@dataclass
class CoRegistered:
    """A Proba-V window and the Landsat-as-Proba-V product resampled onto it."""

    pv: np.ndarray          # (H, W, 4) TOA reflectance
    lu: np.ndarray          # (H, W, 4) TOA reflectance on the Proba-V grid
    clouds: np.ndarray      # (H, W) soft cloud fraction of the Landsat labels
    valid: np.ndarray       # (H, W) both products valid
    row0: int
    col0: int


def check_time_window(pv: ProbaVProduct, lu: LandsatAsProbaVProduct, window: dt.timedelta) -> dt.timedelta:
    """The acquisition gap of a pair, or an InputError naming both products when it exceeds ``window``."""
    gap = time_gap(pv.start_time, pv.end_time, lu.start_time)
    if gap > window:
        raise InputError(f"{pv.path} ({pv.start_time:%Y-%m-%d %H:%M:%S}) and {lu.path} "
                         f"({lu.start_time:%Y-%m-%d %H:%M:%S}) are {gap} apart, more than the window of {window}")
    return gap


def coregister(pv: ProbaVProduct, lu: LandsatAsProbaVProduct) -> CoRegistered:
    """Resample a Landsat-as-Proba-V product onto the part of the Proba-V grid it covers (bilinear).

    A pixel is valid where the Proba-V product is valid and every Landsat pixel contributing to it is valid.
    """
    overlap = _intersection(pv.bounds, lu.bounds)
    if overlap is None:
        raise InputError(f"{pv.path} and {lu.path} do not overlap (bounds {_fmt(pv.bounds)} and {_fmt(lu.bounds)})")
    win = from_bounds(*overlap, transform=pv.transform)
    row0, col0 = max(int(np.floor(win.row_off)), 0), max(int(np.floor(win.col_off)), 0)
    row1 = min(int(np.ceil(win.row_off + win.height)), pv.shape[0])
    col1 = min(int(np.ceil(win.col_off + win.width)), pv.shape[1])
    rows, cols = slice(row0, row1), slice(col0, col1)
    dst_transform = pv.window_transform((rows, cols))
    shape = (row1 - row0, col1 - col0)

    dn = lu.read_dn_all()
    lu_invalid = lu.invalid_from(dn)
    src = np.concatenate([lu.toa_from_dn(dn), lu.read_clouds()[..., None],
                          (~lu_invalid).astype(np.float32)[..., None]], axis=-1)
    src[lu_invalid, :5] = 0.0
    dst = np.zeros((src.shape[-1],) + shape, np.float32)
    rasterio.warp.reproject(np.moveaxis(src, -1, 0), dst, src_transform=lu.transform, src_crs=CRS,
                            dst_transform=dst_transform, dst_crs=CRS, resampling=Resampling.bilinear,
                            src_nodata=None, dst_nodata=0.0)
    pv_dn = pv.read_dn_all((rows, cols))
    valid = ~pv.invalid_from(pv_dn, pv.read_sm((rows, cols))) & (dst[5] >= 1.0 - 1e-4)
    return CoRegistered(pv=pv.toa_from_dn(pv_dn), lu=np.moveaxis(dst[:4], 0, -1), clouds=np.clip(dst[4], 0, 1),
                        valid=valid, row0=rows.start, col0=cols.start)


def _fmt(bounds: tuple) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in bounds) + ")"


def patch_origins(valid: np.ndarray, size: int = 64, stride: int = 32) -> np.ndarray:
    """(K, 2) upper-left (row, col) of the size × size windows on a stride grid that are entirely valid."""
    height, width = valid.shape
    if height < size or width < size:
        return np.zeros((0, 2), int)
    integral = np.pad(np.cumsum(np.cumsum(~valid, axis=0), axis=1), ((1, 0), (1, 0)))
    r = np.arange(0, height - size + 1, stride)
    c = np.arange(0, width - size + 1, stride)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    bad = integral[rr + size, cc + size] - integral[rr, cc + size] - integral[rr + size, cc] + integral[rr, cc]
    return np.stack([rr[bad == 0], cc[bad == 0]], axis=-1)


def pair_patches(pair: Pair, lu_product: str | os.PathLike, window: dt.timedelta = DEFAULT_WINDOW,
                 size: int = 64, stride: int = 32) -> dict[str, np.ndarray]:
    """Co-registered patches of one pair: ``PV``, ``LU``, ``CLOUDS`` and ``ROWCOL`` (row, col in the PV product)."""
    with ProbaVProduct(pair.pvimage) as pv, LandsatAsProbaVProduct(lu_product) as lu:
        gap = check_time_window(pv, lu, window)
        reg = coregister(pv, lu)
    origins = patch_origins(reg.valid, size, stride)
    log.info("%s + %s: %s apart, %d valid %d-px patches", Path(pair.pvimage).name, Path(lu_product).name, gap,
             len(origins), size)
    cut = [(slice(r, r + size), slice(c, c + size)) for r, c in origins]
    empty = np.zeros((0, size, size, 4), np.float32)
    return {
        "PV": np.stack([reg.pv[s] for s in cut]).astype(np.float32) if cut else empty,
        "LU": np.stack([reg.lu[s] for s in cut]).astype(np.float32) if cut else empty,
        "CLOUDS": np.stack([reg.clouds[s] for s in cut]).astype(np.float32) if cut else empty[..., 0],
        "ROWCOL": (origins + [reg.row0, reg.col0]).astype(np.int32),
    }


def build_dataset(pairs: list[Pair], lu_products: list[str | os.PathLike], dest: str | os.PathLike,
                  window: dt.timedelta = DEFAULT_WINDOW, size: int = 64, stride: int = 32) -> Path:
    """Write the patch data set of all pairs to ``dest`` atomically; ``lu_products[i]`` is pair i's converted scene.

    Every pair is checked (time window, overlap) before anything is written; a data set without any
    valid patch is an error.
    """
    if len(pairs) != len(lu_products):
        raise ValueError(f"{len(pairs)} pairs but {len(lu_products)} Landsat-as-Proba-V products")
    if not pairs:
        raise InputError("no pair given")
    dest = Path(dest)
    parts = [pair_patches(p, lu, window, size, stride) for p, lu in zip(pairs, lu_products)]
    total = sum(len(part["PV"]) for part in parts)
    if total == 0:
        names = "; ".join(f"{p.pvimage} + {lu}" for p, lu in zip(pairs, lu_products))
        raise InputError(f"no {size}-px patch is entirely valid in both products of any pair: {names}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp, hdf5_writer(tmp) as f:
        chunk = (min(total, 64), size, size, 4)
        for key in ("PV", "LU"):
            f.create_dataset(key, data=np.concatenate([p[key] for p in parts]), chunks=chunk)
            f[key].attrs["bands"] = ",".join(PV_BANDS)
        f.create_dataset("CLOUDS", data=np.concatenate([p["CLOUDS"] for p in parts]), chunks=chunk[:3])
        f.create_dataset("ROWCOL", data=np.concatenate([p["ROWCOL"] for p in parts]))
        f.create_dataset("PAIR", data=np.concatenate([np.full(len(p["PV"]), i, np.int32) for i, p in enumerate(parts)]))
        f.create_dataset("pair_pvimage", data=[str(p.pvimage).encode() for p in pairs])
        f.create_dataset("pair_l8img", data=[str(p.l8img).encode() for p in pairs])
        f.create_dataset("pair_product", data=[str(lu).encode() for lu in lu_products])
        f.attrs.update({"patch_size": size, "stride": stride, "window_seconds": window.total_seconds(),
                        "label_source": LANDSAT_CLOUDS})
    log.info("Wrote %s: %d patches from %d pairs", dest, total, len(pairs))
    return dest


SYNTHETIC_PLACES = ((45.0, 5.0, "GrassCrops"), (-33.0, 148.0, "Shrubland"), (12.0, -3.0, "Barren"),
                    (38.0, -95.0, "Urban"), (-8.0, -60.0, "Forest"), (50.0, 20.0, "Wetlands"),
                    (25.0, 80.0, "GrassCrops"), (-20.0, 30.0, "Shrubland"))


def write_synthetic_pairs(root: str | os.PathLike, n_pairs: int = 4, seed: int = 0,
                          l8_shape: tuple[int, int] = (1536, 1536), pv_shape: tuple[int, int] = (256, 288),
                          name: str = "pairs") -> Path:
    """Synthetic pseudo-simultaneous pairs: labelled (Biome) Landsat-8 scenes under ``<root>/landsat8/``,
    Proba-V products with the simulated radiometric difference (and true cloud masks) under
    ``<root>/probav/``, both acquired at the same time and place, listed in ``<root>/<name>.csv``."""
    from pvl8da import synthetic

    root = Path(root)
    rows = []
    for i in range(n_pairs):
        lat, lon, biome = SYNTHETIC_PLACES[(seed + i) % len(SYNTHETIC_PLACES)]
        pair_seed = 1000 * seed + i
        when = dt.datetime(2016, 1 + (pair_seed % 12), 10 + i % 15, 10, 30, tzinfo=dt.timezone.utc)
        cover = (0.25, 0.45, 0.35, 0.55)[i % 4]
        scene = synthetic.write_landsat8_scene(root / "landsat8", shape=l8_shape, seed=pair_seed, lat=lat, lon=lon,
                                               acquired=when, biome=biome, cloud_cover=cover,
                                               with_biome_mask=True, with_pan=False)
        product = synthetic.write_probav_product(root / "probav", shape=pv_shape, seed=pair_seed, lat=lat, lon=lon,
                                                 acquired=when, biome=biome, cloud_cover=cover, with_truth=True)
        rows.append((product.relative_to(root), scene.relative_to(root), "biome"))
    dest = root / f"{name}.csv"
    with atomic_path(dest) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["pvimage", "l8img", "type_product"])
        writer.writerows(rows)
    return dest
