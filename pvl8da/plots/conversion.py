"""Quicklook of a conversion: Landsat RGB, the Proba-V look-alike in false colour, and its cloud labels."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from pvl8da.sensors.landsat8 import Landsat8Scene
from pvl8da.plots.common import new_figure, save_figure, stretch
from pvl8da.sensors.probav import PV_BANDS, band_path

MAX_SIDE = 1000


def _read_decimated(product: h5py.File, name: str, step: int) -> np.ndarray:
    return product[name][::step, ::step]


def conversion_quicklook(scene: Landsat8Scene, product_path: str | os.PathLike,
                         dest: str | os.PathLike) -> Path:
    """PNG with the scene's true colour (B4, B3, B2), the product's SWIR/NIR/BLUE composite and CM_RESAMPLED."""
    step30 = max(1, max(scene.shape) // MAX_SIDE)
    rgb = np.stack([scene.toa(b)[::step30, ::step30] for b in (4, 3, 2)], axis=-1)
    rgb_valid = ~scene.invalid()[::step30, ::step30]
    with h5py.File(product_path, "r") as f:
        shape = f[band_path(PV_BANDS[0])].shape
        step = max(1, max(shape) // MAX_SIDE)
        bands = {b: _read_decimated(f, band_path(b), step) for b in PV_BANDS}
        clouds = _read_decimated(f, "CM_RESAMPLED", step) if "CM_RESAMPLED" in f else None
    pv_valid = bands["BLUE"] > -1000
    false_colour = np.stack([bands[b] / 2000.0 for b in ("SWIR", "NIR", "BLUE")], axis=-1)
    panels = 3 if clouds is not None else 2
    fig = new_figure(figsize=(5 * panels, 5))
    axes = fig.subplots(1, panels)
    axes[0].imshow(stretch(rgb, rgb_valid))
    axes[0].set_title(f"Landsat-8 {scene.scene_id}\nTOA B4/B3/B2 (30 m, UTM)")
    axes[1].imshow(stretch(false_colour, pv_valid))
    axes[1].set_title(f"Proba-V look-alike {Path(product_path).stem}\nSWIR/NIR/BLUE (lat/lon)")
    if clouds is not None:
        shown = np.ma.masked_less(clouds, 0)
        im = axes[2].imshow(shown, cmap="Blues_r", vmin=0, vmax=1)
        axes[2].set_title("CM_RESAMPLED cloud fraction\n(white: cloud, grey: invalid)")
        axes[2].set_facecolor("0.6")
        fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, dest)
