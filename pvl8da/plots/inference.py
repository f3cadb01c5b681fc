"""Quicklook of an InferenceDA result: Proba-V false colour before/after adaptation, the predicted
cloud mask and the operational SM cloud mask.

The pictures are gathered while the tiles go through the networks (every n-th pixel), so the bands
are not read again to draw them; only the SM status map is, at the quicklook's sampling."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pvl8da.plots.common import new_figure, save_figure, stretch
from pvl8da.sensors.probav import PV_BANDS

#: False-colour composite (R, G, B) = (NIR, RED, BLUE).
FALSE_COLOUR = tuple(PV_BANDS.index(b) for b in ("NIR", "RED", "BLUE"))
#: Largest side of the sampled pictures: a panel is 4.2 inches at 110 dpi (462 pixels), so more samples would
#: only cost memory and time (3000² product, 1000 → 500 samples a side: peak memory −220 MB, the quicklook
#: 2.0 → 0.95 s).
MAX_SIDE = 500


class QuicklookSamples:
    """Every ``step``-th pixel (rows and columns) of a product's input, adapted bands and cloud
    probability, filled tile by tile; ``step`` keeps each side at most MAX_SIDE pixels."""

    def __init__(self, shape: tuple[int, int]):
        self.step = max(1, int(np.ceil(max(shape) / MAX_SIDE)))
        self.window = (slice(0, shape[0], self.step), slice(0, shape[1], self.step))
        small = (-(-shape[0] // self.step), -(-shape[1] // self.step))
        self.before = np.zeros(small + (3,), np.float32)
        self.after = np.zeros(small + (3,), np.float32)
        self.clouds = np.zeros(small, np.float32)
        self.invalid = np.ones(small, bool)

    def add(self, r0: int, c0: int, toa: np.ndarray, adapted: np.ndarray, clouds: np.ndarray,
            invalid: np.ndarray) -> None:
        """Keep the sampled pixels of a block whose upper-left pixel is (r0, c0) in the product."""
        s = self.step
        dr, dc = (-r0) % s, (-c0) % s
        part = invalid[dr::s, dc::s]
        i, j = (r0 + dr) // s, (c0 + dc) // s
        out = (slice(i, i + part.shape[0]), slice(j, j + part.shape[1]))
        self.invalid[out] = part
        self.clouds[out] = clouds[dr::s, dc::s]
        self.before[out] = toa[dr::s, dc::s][..., FALSE_COLOUR]
        self.after[out] = adapted[dr::s, dc::s][..., FALSE_COLOUR]


def _overlay(rgb: np.ndarray, mask: np.ndarray, colour=(1.0, 0.1, 0.1), alpha=0.5) -> np.ndarray:
    out = rgb.copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour)
    return out


def plot_inference(samples: QuicklookSamples, sm_cloud: np.ndarray, title: str, png_path: str | Path,
                   cm_name: str = "CM_PVDAGANS", threshold: float = 0.5) -> Path:
    """Write the quicklook PNG of an inference result (``sm_cloud``: the SM cloud bit on the samples'
    grid) and return its path."""
    valid = ~samples.invalid
    rgb_before = stretch(samples.before, valid)
    panels = [("Proba-V (NIR, RED, BLUE)", rgb_before)]
    if cm_name == "CM_PVDAGANS":
        panels.append(("adapted to Landsat-8", stretch(samples.after, valid)))
    clouds = samples.clouds >= threshold
    panels.append((f"{cm_name} ≥ {threshold}", _overlay(rgb_before, clouds & valid)))
    panels.append(("operational SM cloud mask", _overlay(rgb_before, sm_cloud & valid, colour=(1.0, 0.8, 0.0))))
    aspect = rgb_before.shape[0] / rgb_before.shape[1]
    fig = new_figure(figsize=(4.2 * len(panels), 4.2 * aspect + 0.9), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, (name, image) in zip(axes, panels):
        ax.imshow(np.round(image * 255).astype(np.uint8), interpolation="nearest")  # uint8: a quarter of the memory
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    cover = lambda m: 100.0 * (m & valid).sum() / max(valid.sum(), 1)  # noqa: E731
    fig.suptitle(f"{title} — clouds: model {cover(clouds):.1f}%, SM {cover(sm_cloud):.1f}% of valid pixels",
                 fontsize=10)
    return save_figure(fig, png_path)
