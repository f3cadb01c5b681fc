"""GenerateFCDMasks: the FCD cloud map, its F1-chosen threshold, pseudo masks and whole-scene masks."""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from pvl8da.storage.atomic import atomic_dir, save_json_atomic
from pvl8da.storage.hdf5 import hdf5_writer
from pvl8da.datasets.patch_data import PatchData
from pvl8da.evaluation.calibration import sample_threshold
from pvl8da.datasets.biome_patches import ASSIGNMENT, read_assignment
from pvl8da.datasets.biome_scenes import valid_pixels
from pvl8da.inference.fcd_tiling import predict_tiled, scene_reader, write_mask_geotiff
from pvl8da.training.fcd_gan import cloud_map, load_generator
from pvl8da.sensors.landsat8 import open_scene

log = logging.getLogger(__name__)

PSEUDO = "pseudo_masks.h5"
THRESHOLD = "threshold.json"


def choose_threshold(generator: keras.Model, train: PatchData, n_patches: int, seed: int) -> tuple[float, float]:
    """Threshold (and its F1) of the cloud map on the seeded labelled sample of training patches."""
    return sample_threshold(lambda x: cloud_map(generator, x).numpy(), train, n_patches, seed)


def pseudo_masks(generator: keras.Model, train: PatchData, threshold: float, batch_size: int = 32) -> np.ndarray:
    """(N, P, P) uint8 pseudo masks of all training patches; patches labelled clear are all clear."""
    out = np.zeros((len(train), train.patch_size, train.patch_size), np.uint8)
    for s in range(0, len(train), batch_size):
        b = train.batch(np.arange(s, min(s + batch_size, len(train))))
        d = cloud_map(generator, b["x"]).numpy()
        m = (d >= threshold) & (b["valid"][..., 0] > 0) & (b["label"][:, :, None] > 0)
        out[s:s + len(m)] = m
    return out


def scene_cloud_map(generator: keras.Model, scene, tile: int = 128, halo: int = 0) -> np.ndarray:
    """Whole-scene FCD cloud map (rows, cols), predicted in tiles.

    Instance normalisation makes the generator depend on the extent it sees: tiles of the training
    patch size without halo reproduce the patch-level maps the threshold was chosen on.
    """
    return predict_tiled(lambda x: cloud_map(generator, x).numpy()[0], scene_reader(scene), scene.shape,
                         tile, halo, multiple=4)


def generate_fcd_masks(patch_dir: str | Path, gan_dir: str | Path, out_dir: str | Path,
                       sample_patches: int = 1000, seed: int = 0, scene_splits: tuple[str, ...] = ("train", "test"),
                       tile: int | None = None) -> Path:
    """Write ``threshold.json``, ``pseudo_masks.h5`` (dataset ``cloud`` aligned with ``train.h5``) and
    ``scenes/<ID>_fcd.tif`` for the scenes of ``scene_splits`` into ``out_dir``, atomically.
    Scenes are predicted in tiles of ``tile`` pixels (default: the patch size)."""
    patch_dir, out_dir = Path(patch_dir), Path(out_dir)
    generator = load_generator(gan_dir)
    train = PatchData(patch_dir / "train.h5")
    try:
        threshold, f1 = choose_threshold(generator, train, sample_patches, seed)
        log.info("threshold %.5f (F1 %.4f on the labelled sample)", threshold, f1)
        masks = pseudo_masks(generator, train, threshold)
        tile = tile or train.patch_size
    finally:
        train.close()
    with atomic_dir(out_dir) as tmp:
        with hdf5_writer(tmp / PSEUDO) as f:
            f.create_dataset("cloud", data=masks, chunks=(1,) + masks.shape[1:], compression="lzf")
            f.attrs["threshold"] = threshold
        (tmp / "scenes").mkdir()
        for row in read_assignment(patch_dir / ASSIGNMENT):
            if row["split"] not in scene_splits:
                continue
            scene = open_scene(row["folder"], type_product="biome")
            d = scene_cloud_map(generator, scene, tile)
            valid = valid_pixels(scene, scene.cloud_mask())
            write_mask_geotiff(scene, d >= threshold, valid, tmp / "scenes" / f"{scene.scene_id}_fcd.tif")
        save_json_atomic({"threshold": threshold, "sample_f1": f1, "sample_patches": sample_patches,
                          "seed": seed}, tmp / THRESHOLD)
    return out_dir
