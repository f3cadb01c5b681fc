"""Quicklook of an InferenceDA result: Proba-V false colour before/after adaptation, the predicted
cloud mask and the operational SM cloud mask."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pvl8da.plots.common import plt, save_figure, stretch
from pvl8da.probav import PV_BANDS, ProbaVProduct

#: False-colour composite (R, G, B) = (NIR, RED, BLUE).
FALSE_COLOUR = tuple(PV_BANDS.index(b) for b in ("NIR", "RED", "BLUE"))
MAX_SIDE = 1000


def _decimated(read, shape: tuple[int, int], strip: int = 512) -> np.ndarray:
    """Every ``step``-th pixel of ``read(window)``, read in row strips (bounded memory, fast for HDF5)."""
    step = max(1, int(np.ceil(max(shape) / MAX_SIDE)))
    strip = strip - strip % step
    parts = [read((slice(r0, min(r0 + strip, shape[0])), slice(0, shape[1])))[::step, ::step]
             for r0 in range(0, shape[0], strip)]
    return np.concatenate(parts, axis=0)


def _overlay(rgb: np.ndarray, mask: np.ndarray, colour=(1.0, 0.1, 0.1), alpha=0.5) -> np.ndarray:
    out = rgb.copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour)
    return out


def plot_inference(src_path: str | Path, result_path: str | Path, png_path: str | Path,
                   cm_name: str = "CM_PVDAGANS", threshold: float = 0.5) -> Path:
    """Write the quicklook PNG of an inference result and return its path."""
    with ProbaVProduct(src_path) as src, ProbaVProduct(result_path) as res:
        invalid = _decimated(src.invalid, src.shape)
        before = _decimated(src.read_toa, src.shape)[..., FALSE_COLOUR]
        after = _decimated(res.read_toa, res.shape)[..., FALSE_COLOUR]
        clouds = _decimated(lambda w: res.read(cm_name, w), res.shape)
        sm_cloud = _decimated(src.cloud_mask_sm, src.shape)
        adapted = cm_name == "CM_PVDAGANS"
        when = src.start_time.strftime("%Y-%m-%d %H:%M")
    valid = ~invalid
    rgb_before = stretch(before, valid)
    panels = [("Proba-V (NIR, RED, BLUE)", rgb_before)]
    if adapted:
        panels.append(("adapted to Landsat-8", stretch(after, valid)))
    panels.append((f"{cm_name} ≥ {threshold}", _overlay(rgb_before, (clouds >= threshold) & valid)))
    panels.append(("operational SM cloud mask", _overlay(rgb_before, sm_cloud & valid, colour=(1.0, 0.8, 0.0))))
    aspect = rgb_before.shape[0] / rgb_before.shape[1]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2 * aspect + 0.9), layout="constrained")
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    cover = lambda m: 100.0 * (m & valid).sum() / max(valid.sum(), 1)  # noqa: E731
    fig.suptitle(f"{Path(src_path).name} ({when}) — clouds: model {cover(clouds >= threshold):.1f}%, "
                 f"SM {cover(sm_cloud):.1f}% of valid pixels", fontsize=10)
    return save_figure(fig, png_path)
