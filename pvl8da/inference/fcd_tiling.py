"""Whole-scene prediction in tiles with a halo, and GeoTIFF output georeferenced like the scene."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from pvl8da.inference import tiling as tiler
from pvl8da.storage.atomic import atomic_path
from pvl8da.datasets.biome_scenes import read_stack, scale_dn
from pvl8da.sensors.landsat8 import Landsat8Scene

NODATA = 255


def predict_tiled(fn: Callable[[np.ndarray], np.ndarray], read: Callable[[Window], np.ndarray],
                  shape: tuple[int, int], tile: int = 1024, halo: int = 32, multiple: int = 32) -> np.ndarray:
    """Apply ``fn`` ((1, h, w, C) → (h, w)) over ``shape`` with the project's tiler
    (:mod:`pvl8da.inference.tiling`, blocks inside the scene): ``tile``-pixel cores on the network's grid of
    ``multiple`` pixels, each with a ``halo``, all of one shape; a scene within one tile is one block without
    halo. ``read(window)`` returns the (h, w, C) input of a window. Returns the (rows, cols) float32 map."""
    whole = -(-max(shape) // multiple) * multiple
    if tile >= whole:
        tile, halo = whole, 0

    def batch_fn(x: np.ndarray) -> tuple[np.ndarray]:
        return (np.stack([np.asarray(fn(block[None]), np.float32) for block in x]),)

    def read_slices(rows: slice, cols: slice) -> np.ndarray:
        return read(Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))

    return tiler.predict_tiled(batch_fn, read_slices, shape, tiler.Tiling(tile=tile, halo=halo, align=multiple,
                                                                           edge="inside"))[0]


def scene_reader(scene: Landsat8Scene) -> Callable[[Window], np.ndarray]:
    """Window → the scene's 10 bands scaled to [−1, 1] (fill −1)."""
    return lambda window: scale_dn(read_stack(scene, window))


def write_mask_geotiff(scene: Landsat8Scene, mask: np.ndarray, valid: np.ndarray, path: str | Path) -> Path:
    """uint8 GeoTIFF on the scene's grid: 1 cloud, 0 clear, 255 no data; written atomically."""
    data = np.where(valid, mask.astype(np.uint8), NODATA).astype(np.uint8)
    profile = dict(driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype="uint8",
                   crs=scene.crs, transform=scene.transform, nodata=NODATA, compress="deflate")
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
    return Path(path)
