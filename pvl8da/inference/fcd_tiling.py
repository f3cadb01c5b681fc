"""Whole-scene prediction in tiles with a halo, and GeoTIFF output georeferenced like the scene."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from pvl8da.storage.atomic import atomic_path
from pvl8da.datasets.biome_scenes import read_stack, scale_dn
from pvl8da.sensors.landsat8 import Landsat8Scene

NODATA = 255


def _pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
    """Pad rows and columns at the end up to a multiple (reflect where the tile is big enough)."""
    pr, pc = (-a.shape[0]) % multiple, (-a.shape[1]) % multiple
    if not (pr or pc):
        return a
    mode = "reflect" if pr < a.shape[0] and pc < a.shape[1] else "edge"
    return np.pad(a, ((0, pr), (0, pc), (0, 0)), mode=mode)


def predict_tiled(fn: Callable[[np.ndarray], np.ndarray], read: Callable[[Window], np.ndarray],
                  shape: tuple[int, int], tile: int = 1024, halo: int = 32, multiple: int = 32) -> np.ndarray:
    """Apply ``fn`` ((1, h, w, C) → (h, w)) over ``shape`` in ``tile``-pixel tiles with a ``halo``;
    ``read(window)`` returns the (h, w, C) input of a window. Returns the (rows, cols) float32 map."""
    rows, cols = shape
    out = np.zeros(shape, np.float32)
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            r1, c1 = min(r0 + tile, rows), min(c0 + tile, cols)
            er0, ec0 = max(r0 - halo, 0), max(c0 - halo, 0)
            er1, ec1 = min(r1 + halo, rows), min(c1 + halo, cols)
            x = read(Window(ec0, er0, ec1 - ec0, er1 - er0))
            pred = fn(_pad_to(x, multiple)[None])
            out[r0:r1, c0:c1] = pred[r0 - er0:r1 - er0, c0 - ec0:c1 - ec0]
    return out


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
