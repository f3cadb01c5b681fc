"""Biome scenes for FCD: discovery under ``<root>/<biome>/<scene ID>/``, the 10-band stack and its scaling."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from pvl8da.errors import InputError
from pvl8da.sensors.landsat8 import BIOME_FILL, BiomeScene, Landsat8Scene, open_scene

BANDS = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)
RGB = (BANDS.index(4), BANDS.index(3), BANDS.index(2))


@dataclass(frozen=True)
class SceneRef:
    """Where a Biome scene lies and which biome it belongs to."""

    biome: str
    scene_id: str
    folder: Path

    def open(self) -> BiomeScene:
        """Open the scene as a Biome scene, checking that its bands, quality band and mask exist."""
        return open_scene(self.folder, type_product="biome")


def find_scenes(root: str | Path) -> list[SceneRef]:
    """All scene folders ``<root>/<biome>/<scene ID>/``, sorted by biome and ID."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: Biome root folder not found")
    refs = [
        SceneRef(biome.name, scene.name, scene)
        for biome in sorted(p for p in root.iterdir() if p.is_dir())
        for scene in sorted(p for p in biome.iterdir() if p.is_dir())
    ]
    if not refs:
        raise InputError(f"{root}: no scene folders <biome>/<scene ID>/ found")
    return refs


def read_stack(scene: Landsat8Scene, window: Window | None = None) -> np.ndarray:
    """The 10 FCD bands as uint16 DN, shape (rows, cols, 10); InputError naming the scene on size mismatch."""
    bands = [scene.read_dn(b, window) for b in BANDS]
    shapes = {b.shape for b in bands}
    if len(shapes) != 1:
        raise InputError(f"scene {scene.scene_id}: bands of mismatched sizes {sorted(shapes)}")
    return np.stack(bands, axis=-1)


def scale_dn(dn: np.ndarray) -> np.ndarray:
    """DN → [−1, 1] as ``2·DN/65535 − 1`` (float32); fill (DN 0) becomes −1 in every band."""
    x = dn.astype(np.float32) * np.float32(2.0 / 65535.0) - np.float32(1.0)
    x[np.any(dn == 0, axis=-1)] = -1.0
    return x


def valid_pixels(scene: BiomeScene, mask: np.ndarray, window: Window | None = None) -> np.ndarray:
    """Pixels scored and trained on: not quality-band fill and labelled (fixedmask ≠ 0)."""
    return ~scene.fill(window) & (mask != BIOME_FILL)
