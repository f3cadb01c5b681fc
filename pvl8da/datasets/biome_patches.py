"""PrepareBiomePatches: seeded per-biome split and 128-pixel patch files (one chunked HDF5 per split)."""
from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
from rasterio.windows import Window

from pvl8da.storage.atomic import atomic_dir
from pvl8da.storage.hdf5 import close_safely
from pvl8da.errors import InputError
from pvl8da.datasets.biome_scenes import BANDS, RGB, SceneRef, find_scenes, read_stack
from pvl8da.sensors.landsat8 import BIOME_CLOUD, BIOME_FILL, BIOME_THIN

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
PAPER_FRACTIONS = (6, 2, 4)
ASSIGNMENT = "assignment.csv"


def split_counts(n: int, fractions: tuple[int, int, int] = PAPER_FRACTIONS) -> tuple[int, int, int]:
    """Scenes per split for a biome of ``n`` scenes: 6/2/4 of 12, proportional (largest remainder)
    otherwise, with at least one scene in every split once ``n ≥ 3``."""
    share = np.asarray(fractions, float) * n / sum(fractions)
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= 3:
        for i in range(3):
            if counts[i] == 0:
                counts[np.argmax(counts)] -= 1
                counts[i] = 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def split_scenes(refs: list[SceneRef], seed: int) -> dict[str, str]:
    """Scene ID → split, drawn per biome (sorted) with one generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    by_biome: dict[str, list[SceneRef]] = defaultdict(list)
    for ref in refs:
        by_biome[ref.biome].append(ref)
    assignment = {}
    for biome in sorted(by_biome):
        scenes = sorted(by_biome[biome], key=lambda r: r.scene_id)
        order = rng.permutation(len(scenes))
        n_train, n_val, _ = split_counts(len(scenes))
        for rank, i in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            assignment[scenes[i].scene_id] = split
    return assignment


def write_assignment(path: Path, refs: list[SceneRef], assignment: dict[str, str]) -> None:
    """``assignment.csv``: biome, scene_id, split, folder."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["biome", "scene_id", "split", "folder"])
        for ref in refs:
            writer.writerow([ref.biome, ref.scene_id, assignment[ref.scene_id], str(ref.folder)])


def read_assignment(path: str | Path) -> list[dict[str, str]]:
    """Rows of ``assignment.csv`` as dicts (biome, scene_id, split, folder)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class PatchWriter:
    """Appends patches to one chunked, LZF-compressed HDF5 file: ``patches`` (N, P, P, 10) uint16 DN,
    ``labels`` (N,) uint8 (1 cloudy), ``masks`` (N, P, P) uint8 fixedmask classes (0 = fill or
    quality-band fill), ``scene_ids`` (N,) and ``offsets`` (N, 2) row, col of the patch in its scene."""

    def __init__(self, path: Path, patch_size: int):
        self.file = h5py.File(path, "w")
        p = patch_size
        self.file.attrs.update(patch_size=p, bands=np.asarray(BANDS), scale="x / 65535 * 2 - 1")
        make = self.file.create_dataset
        self.patches = make("patches", (0, p, p, len(BANDS)), "uint16", maxshape=(None, p, p, len(BANDS)),
                            chunks=(1, p, p, len(BANDS)), compression="lzf")
        self.masks = make("masks", (0, p, p), "uint8", maxshape=(None, p, p), chunks=(1, p, p), compression="lzf")
        self.labels = make("labels", (0,), "uint8", maxshape=(None,), chunks=(4096,))
        self.offsets = make("offsets", (0, 2), "int32", maxshape=(None, 2), chunks=(4096, 2))
        self.scene_ids = make("scene_ids", (0,), h5py.string_dtype(), maxshape=(None,), chunks=(4096,))

    def append(self, scene_id: str, patches: np.ndarray, masks: np.ndarray, offsets: np.ndarray) -> None:
        n0, n = len(self.labels), len(patches)
        if n == 0:
            return
        for ds in (self.patches, self.masks, self.labels, self.offsets, self.scene_ids):
            ds.resize(n0 + n, axis=0)
        self.patches[n0:] = patches
        self.masks[n0:] = masks
        self.labels[n0:] = np.any((masks == BIOME_THIN) | (masks == BIOME_CLOUD), axis=(1, 2))
        self.offsets[n0:] = offsets
        self.scene_ids[n0:] = [scene_id] * n

    def close(self, failed: bool = False) -> None:
        close_safely(self.file, failed)


def scene_patches(ref: SceneRef, patch_size: int, writer: PatchWriter, thumb_dir: Path) -> tuple[int, int]:
    """Cut one scene into non-overlapping patches (all-fill ones dropped), append them and write its
    thumbnail; returns (patches, cloudy patches)."""
    scene = ref.open()
    rows, cols = scene.shape
    p = patch_size
    step = max(1, int(np.ceil(max(rows, cols) / 512)))
    thumb_rows, n, n_cloudy = [], 0, 0
    for r0 in range(0, rows, p):
        window = Window(0, r0, cols, min(p, rows - r0))
        dn = read_stack(scene, window)
        mask = np.where(scene.fill(window), BIOME_FILL, scene.cloud_mask(window)).astype(np.uint8)
        keep = np.arange(r0, r0 + dn.shape[0]) % step == 0
        thumb_rows.append(dn[keep][:, ::step][..., list(RGB)])
        if dn.shape[0] < p:
            continue
        c0s = [c for c in range(0, cols - p + 1, p) if np.any(mask[:, c:c + p] != BIOME_FILL)]
        if not c0s:
            continue
        patches = np.stack([dn[:, c:c + p] for c in c0s])
        masks = np.stack([mask[:, c:c + p] for c in c0s])
        writer.append(scene.scene_id, patches, masks, np.asarray([(r0, c) for c in c0s], np.int32))
        n += len(c0s)
        n_cloudy += int(np.any(masks >= BIOME_THIN, axis=(1, 2)).sum())
    save_thumbnail(np.concatenate(thumb_rows), thumb_dir / f"{scene.scene_id}.png")
    return n, n_cloudy


def save_thumbnail(rgb_dn: np.ndarray, path: Path) -> None:
    """Percentile-stretched RGB quicklook of DN (0 = fill, shown black)."""
    import matplotlib.pyplot as plt

    from pvl8da.plots.common import stretch

    valid = np.all(rgb_dn > 0, axis=-1)
    plt.imsave(path, stretch(rgb_dn, valid))


def prepare_biome_patches(root: str | Path, out_dir: str | Path, seed: int = 0, patch_size: int = 128) -> Path:
    """Split the scenes under ``root``, write ``assignment.csv``, ``{train,val,test}.h5`` and
    ``thumbnails/`` into ``out_dir`` atomically; InputError naming the scene (or split) on bad input."""
    refs = find_scenes(root)
    for ref in refs:
        ref.open()
    assignment = split_scenes(refs, seed)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        write_assignment(tmp / ASSIGNMENT, refs, assignment)
        (tmp / "thumbnails").mkdir()
        for split in SPLITS:
            members = [r for r in refs if assignment[r.scene_id] == split]
            writer = PatchWriter(tmp / f"{split}.h5", patch_size)
            try:
                counts = [scene_patches(r, patch_size, writer, tmp / "thumbnails") for r in members]
            except BaseException:
                writer.close(failed=True)
                raise
            writer.close()
            n, n_cloudy = map(sum, zip(*counts)) if counts else (0, 0)
            log.info("%s: %d scenes, %d patches, %d cloudy", split, len(members), n, n_cloudy)
            names = ", ".join(r.scene_id for r in members)
            if split != "test" and members and n_cloudy == 0:
                raise InputError(f"split {split!r} has no cloudy patch (scenes {names}); FCD needs cloudy images")
            if split != "test" and n_cloudy == n:
                log.warning("split %r has no clear patch (scenes %s)", split, names)
    return out_dir
