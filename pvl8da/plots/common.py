"""Helpers shared by the quicklook figures."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pvl8da.storage.atomic import atomic_path  # noqa: E402


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


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Write a figure to PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
