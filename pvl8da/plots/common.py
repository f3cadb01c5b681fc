"""Helpers shared by the quicklook figures: figures drawn on Agg canvases outside pyplot, so that importing
or using pvl8da neither selects nor changes the user's matplotlib backend (e.g. in a notebook)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pvl8da.storage.atomic import atomic_path


def new_figure(**options: Any) -> Figure:
    """A figure (``options`` as for matplotlib's Figure) with its own Agg canvas, unknown to pyplot."""
    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def stretch(rgb: np.ndarray, valid: np.ndarray | None = None, percentiles=(2, 98)) -> np.ndarray:
    """Percentile stretch of an (H, W, 3) image to [0, 1]; invalid pixels become black."""
    rgb = np.asarray(rgb, dtype=np.float32)
    mask = np.ones(rgb.shape[:2], bool) if valid is None else valid
    out = np.zeros_like(rgb)
    if mask.any():
        lo, hi = np.percentile(rgb[mask], percentiles, axis=0)
        out = np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    out[~mask] = 0
    return out


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a figure to PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path
