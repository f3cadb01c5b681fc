"""EvaluateBiome: whole test scenes, every method against the manual Biome masks; table, CSV and figure."""
from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path

import keras
import numpy as np
import rasterio

from pvl8da.storage.atomic import atomic_dir
from pvl8da.errors import InputError
from pvl8da.storage.atomic import save_json_atomic
from pvl8da.evaluation.metrics import SCORE_NAMES, Confusion, class_scores, confusion, markdown_table
from pvl8da.datasets.biome_patches import ASSIGNMENT, read_assignment
from pvl8da.datasets.biome_scenes import valid_pixels
from pvl8da.inference.fcd_tiling import predict_tiled, scene_reader
from pvl8da.training.fcd_unet import calibrated_threshold, cloud_probability, load_unet
from pvl8da.sensors.landsat8 import BIOME_THIN, open_scene
from pvl8da.plots.common import new_figure, save_figure, stretch

log = logging.getLogger(__name__)

QUALITY_FLAG = "Quality-band cloud flag"
FCD = "FCD"
CALIBRATED = "calibrated"


def _read_fcd_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: FCD whole-scene mask missing")
    with rasterio.open(path) as src:
        data = src.read(1)
    if data.shape != shape:
        raise InputError(f"{path}: mask size {data.shape} differs from the scene's {shape}")
    return data == 1


def predict_scene(scene, fcd_masks_dir: Path, unets: dict[str, keras.Model], cuts: dict[str, tuple[str, float]],
                  tile: int) -> dict[str, np.ndarray]:
    """Boolean cloud masks of every method for one scene; ``cuts`` maps a method to (U-Net, threshold)."""
    preds = {QUALITY_FLAG: scene.cfmask_cloud(), FCD: _read_fcd_mask(fcd_masks_dir / "scenes" / f"{scene.scene_id}_fcd.tif", scene.shape)}
    reader = scene_reader(scene)
    probs = {name: predict_tiled(lambda x, m=model: cloud_probability(m, x)[0], reader, scene.shape, tile, 32, 32)
             for name, model in unets.items()}
    for method, (name, threshold) in cuts.items():
        preds[method] = probs[name] >= threshold
    return preds


def unet_cuts(unet_dirs: dict[str, str | Path]) -> dict[str, tuple[str, float]]:
    """Each U-Net at probability 0.5, followed by ``<name> calibrated`` at its sample threshold where
    its run has one."""
    cuts = {}
    for name, d in unet_dirs.items():
        cuts[name] = (name, 0.5)
        threshold = calibrated_threshold(d)
        if threshold is not None:
            cuts[f"{name} {CALIBRATED}"] = (name, threshold)
    return cuts


def _rows(level: str, name: str, biome: str, per_method: dict[str, Confusion]) -> list[dict]:
    return [{"level": level, "name": name, "biome": biome, "method": m, **class_scores(c), "pixels": c.total}
            for m, c in per_method.items()]


def score_tables(rows: list[dict], methods: list[str]) -> str:
    """Overall scores per method, then accuracy and mean F1 per biome and method."""
    overall = {r["method"]: r for r in rows if r["level"] == "overall"}
    header = ["Method", "Accuracy", "F1 clear", "F1 cloud", "mean F1", "IoU clear", "IoU cloud", "mean IoU"]
    table = markdown_table(header, ([m, *(f"{100 * overall[m][k]:.2f}" for k in SCORE_NAMES)] for m in methods))
    by = {(r["biome"], r["method"]): r for r in rows if r["level"] == "biome"}
    per_biome = markdown_table(["Biome", *methods], (
        [b, *(f"{100 * by[b, m]['accuracy']:.1f} / {100 * by[b, m]['f1_mean']:.1f}" for m in methods)]
        for b in sorted({r["biome"] for r in rows if r["level"] == "biome"})))
    return table + "\nAccuracy / mean F1 (%) per biome:\n\n" + per_biome


def example_figure(examples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, dict]], methods: list[str],
                   path: Path) -> None:
    """Rows of example scenes: RGB, ground truth, then each method's mask (white cloud, grey no data)."""
    ncol = 2 + len(methods)
    fig = new_figure(figsize=(2.2 * ncol, 2.3 * len(examples)))
    axes = fig.subplots(len(examples), ncol, squeeze=False)
    for row, (sid, rgb, truth, valid, preds) in zip(axes, examples):
        panels = [("RGB", stretch(rgb, valid)), ("Ground truth", truth)] + [(m, preds[m]) for m in methods]
        for ax, (title, img) in zip(row, panels):
            if img.ndim == 2:
                img = np.where(valid, img.astype(np.float32), 0.5)
                ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(img)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(sid, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def evaluate_biome(patch_dir: str | Path, fcd_masks_dir: str | Path, unet_dirs: dict[str, str | Path],
                   out_dir: str | Path, tile: int = 1024, n_examples: int = 3) -> dict:
    """Score every method on the test scenes; writes ``metrics.csv``, ``table.md``, ``summary.json``
    and ``examples.png`` into ``out_dir`` atomically and returns the overall scores per method."""
    patch_dir, fcd_masks_dir = Path(patch_dir), Path(fcd_masks_dir)
    tests = [r for r in read_assignment(patch_dir / ASSIGNMENT) if r["split"] == "test"]
    if not tests:
        raise InputError(f"{patch_dir / ASSIGNMENT}: no test scene")
    unets = {name: load_unet(d) for name, d in unet_dirs.items()}
    cuts = unet_cuts(unet_dirs)
    methods = [FCD, *cuts, QUALITY_FLAG]
    rows, by_biome, overall = [], defaultdict(lambda: defaultdict(Confusion)), defaultdict(Confusion)
    examples = []
    for r in tests:
        scene = open_scene(r["folder"], type_product="biome")
        mask = scene.cloud_mask()
        valid = valid_pixels(scene, mask)
        truth = mask >= BIOME_THIN
        preds = predict_scene(scene, fcd_masks_dir, unets, cuts, tile)
        per = {m: confusion(preds[m], truth, valid) for m in methods}
        rows += _rows("scene", scene.scene_id, r["biome"], per)
        for m, c in per.items():
            by_biome[r["biome"]][m] += c
            overall[m] += c
        if len(examples) < n_examples:
            step = max(1, int(np.ceil(max(scene.shape) / 400)))
            rgb = np.stack([scene.read_dn(b)[::step, ::step] for b in (4, 3, 2)], -1)
            examples.append((scene.scene_id, rgb, truth[::step, ::step], valid[::step, ::step],
                             {m: p[::step, ::step] for m, p in preds.items()}))
        log.info("%s: %s", scene.scene_id, {m: round(class_scores(c)["accuracy"], 4) for m, c in per.items()})
    for b in sorted(by_biome):
        rows += _rows("biome", b, b, by_biome[b])
    rows += _rows("overall", "all", "all", overall)
    summary = {m: class_scores(overall[m]) for m in methods}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        with open(tmp / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["level", "name", "biome", "method", *SCORE_NAMES, "pixels"])
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "table.md").write_text(score_tables(rows, methods))
        save_json_atomic(summary, tmp / "summary.json")
        example_figure(examples, methods, tmp / "examples.png")
    return summary
