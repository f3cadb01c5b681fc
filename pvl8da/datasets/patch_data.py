"""Batches from the split HDF5 files written by PrepareBiomePatches (scaled, optionally augmented)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pvl8da.errors import InputError
from pvl8da.datasets.biome_scenes import scale_dn
from pvl8da.sensors.landsat8 import BIOME_FILL, BIOME_THIN
from pvl8da.training.augment import d4

IN_MEMORY_BYTES = 2 << 30


class PatchData:
    """Random-access patches of one split: held in memory when small, read by index from HDF5 otherwise.

    ``targets`` optionally replaces the pixel cloud targets (e.g. pseudo masks, (N, P, P) 0/1).
    ``pixel_keep`` (share, seed) keeps that seeded random share of each patch's pixels labelled (``valid``):
    the same pixels of a patch every time it is drawn, chosen before augmentation.
    """

    def __init__(self, path: str | Path, targets: np.ndarray | None = None,
                 pixel_keep: tuple[float, int] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: patch file not found")
        self._file = h5py.File(self.path, "r")
        self.labels = self._file["labels"][:].astype(np.float32)
        self.scene_ids = self._file["scene_ids"].asstr()[:]
        self.patch_size = int(self._file.attrs["patch_size"])
        self._patches = self._file["patches"]
        self._masks = self._file["masks"]
        if self._patches.size * 2 <= IN_MEMORY_BYTES:
            self._patches, self._masks = self._patches[:], self._masks[:]
        if targets is not None and len(targets) != len(self):
            raise InputError(f"{self.path}: {len(targets)} targets for {len(self)} patches")
        self.targets = targets
        self.pixel_keep = pixel_keep

    def __len__(self) -> int:
        return len(self.labels)

    def close(self) -> None:
        self._file.close()

    def batch(self, index: np.ndarray, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """``x`` (B, P, P, 10) in [−1, 1], ``label`` (B, 1), ``cloud`` and ``valid`` (B, P, P, 1) float32;
        a random flip/rot90 per sample when ``rng`` is given."""
        index = np.asarray(index)
        order = np.argsort(index)
        sorted_idx = index[order]
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        dn = self._patches[unique][inverse]
        masks = self._masks[unique][inverse]
        back = np.argsort(order)
        dn, masks = dn[back], masks[back]
        cloud = masks >= BIOME_THIN if self.targets is None else self.targets[index].astype(bool)
        out = {
            "x": scale_dn(dn),
            "label": self.labels[index][:, None],
            "cloud": cloud[..., None].astype(np.float32),
            "valid": (masks != BIOME_FILL)[..., None].astype(np.float32),
        }
        if self.pixel_keep is not None:
            out["valid"] *= kept_pixels(index, self.patch_size, *self.pixel_keep)[..., None]
        if rng is not None:
            for i in range(len(index)):
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                for key in ("x", "cloud", "valid"):
                    out[key][i] = d4(out[key][i], k + 4 * flip)
        return out

    def sample(self, batch_size: int, rng: np.random.Generator, augment: bool = True) -> dict[str, np.ndarray]:
        """A uniformly drawn batch."""
        return self.batch(rng.integers(0, len(self), batch_size), rng if augment else None)

    def iter_batches(self, batch_size: int, limit: int | None = None):
        """Consecutive batches over the first ``limit`` patches (all by default), not augmented."""
        n = len(self) if limit is None else min(limit, len(self))
        for s in range(0, n, batch_size):
            yield self.batch(np.arange(s, min(s + batch_size, n)))


def kept_pixels(index: np.ndarray, patch_size: int, share: float, seed: int) -> np.ndarray:
    """(B, P, P) float32 masks of the labelled pixels of patches ``index``: a seeded random ``share`` of each."""
    if not 0 < share <= 1:
        raise InputError(f"the share of labelled pixels must lie in (0, 1], not {share}")
    return np.stack([np.random.default_rng([seed, int(i)]).random((patch_size, patch_size)) < share
                     for i in np.asarray(index)]).astype(np.float32)
