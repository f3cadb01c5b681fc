"""PrepareBiomePatches on tiny synthetic Biome scenes, and its bad-input errors (nothing half-written)."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from pvl8da.errors import InputError
from pvl8da.datasets.biome_patches import prepare_biome_patches, read_assignment
from pvl8da.datasets.biome_scenes import find_scenes
from pvl8da.datasets.patch_data import PatchData
from pvl8da.synthetic import write_biome_dataset


@pytest.fixture(scope="module")
def biome_root(tmp_path_factory) -> Path:
    return write_biome_dataset(tmp_path_factory.mktemp("biome") / "root", n_biomes=2, scenes_per_biome=3,
                               shape=(160, 160), seed=1)


@pytest.fixture()
def root_copy(biome_root, tmp_path) -> Path:
    return Path(shutil.copytree(biome_root, tmp_path / "root"))


def test_patch_files(biome_root, tmp_path):
    out = prepare_biome_patches(biome_root, tmp_path / "patches", seed=3, patch_size=64)
    rows = read_assignment(out / "assignment.csv")
    assert len(rows) == 6 and {r["split"] for r in rows} == {"train", "val", "test"}
    assert read_assignment(prepare_biome_patches(biome_root, tmp_path / "again", seed=3, patch_size=64)
                           / "assignment.csv") == rows
    assert sorted(p.stem for p in (out / "thumbnails").glob("*.png")) == sorted(r["scene_id"] for r in rows)
    with h5py.File(out / "train.h5") as f:
        n = len(f["labels"])
        assert f["patches"].shape == (n, 64, 64, 10) and f["patches"].dtype == np.uint16
        assert f["patches"].chunks == (1, 64, 64, 10)
        masks, labels = f["masks"][:], f["labels"][:]
        assert np.array_equal(labels, np.any(masks >= 192, axis=(1, 2)))
        assert np.all(np.any(masks != 0, axis=(1, 2)))  # no all-fill patch
        sid, (r, c) = f["scene_ids"].asstr()[0], f["offsets"][0]
    ref = next(s for s in find_scenes(biome_root) if s.scene_id == sid).open()
    with rasterio.open(ref.band_path(9)) as src:
        assert np.array_equal(src.read(1)[r:r + 64, c:c + 64], f_patch_band(out / "train.h5", 0, 7))


def f_patch_band(path: Path, i: int, b: int) -> np.ndarray:
    with h5py.File(path) as f:
        return f["patches"][i, ..., b]


def test_missing_mask_names_scene(root_copy, tmp_path):
    scene = sorted(root_copy.glob("*/*"))[2]
    (scene / f"{scene.name}_fixedmask.img").unlink()
    with pytest.raises(InputError, match=scene.name):
        prepare_biome_patches(root_copy, tmp_path / "out", seed=0, patch_size=64)
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_mismatched_band_names_scene(root_copy, tmp_path):
    scene = sorted(root_copy.glob("*/*"))[4]
    band = scene / f"{scene.name}_B6.TIF"
    with rasterio.open(band) as src:
        profile, data = src.profile, src.read(1)
    profile.update(height=data.shape[0] - 10)
    smaller = tmp_path / "smaller.tif"  # GDAL would delete the sibling MTL when overwriting in place
    with rasterio.open(smaller, "w", **profile) as dst:
        dst.write(data[:-10], 1)
    shutil.move(smaller, band)
    with pytest.raises(InputError, match=scene.name):
        prepare_biome_patches(root_copy, tmp_path / "out", seed=0, patch_size=64)
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_split_without_cloudy_patch(root_copy, tmp_path):
    for img in root_copy.glob("*/*/*_fixedmask.img"):
        data = np.fromfile(img, np.uint8)
        data[data >= 192] = 128
        data.tofile(img)
    with pytest.raises(InputError, match="no cloudy patch") as err:
        prepare_biome_patches(root_copy, tmp_path / "out", seed=0, patch_size=64)
    assert "LC8" in str(err.value)
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_pixel_keep_labels_the_same_pixels_of_a_patch_every_draw(biome_root, tmp_path):
    """keep="pixels": a seeded 1 % of each patch's pixels stays labelled, the same ones whatever the batch and,
    under augmentation, moved with the patch."""
    out = prepare_biome_patches(biome_root, tmp_path / "patches", seed=3, patch_size=64)
    full, sparse = PatchData(out / "train.h5"), PatchData(out / "train.h5", pixel_keep=(0.01, 5))
    index = np.arange(min(6, len(full)))
    a, b = sparse.batch(index), sparse.batch(index[::-1])
    assert np.array_equal(a["valid"], b["valid"][::-1])
    kept = a["valid"][..., 0] > 0
    assert np.all(full.batch(index)["valid"][kept] > 0)  # a subset of the valid pixels
    assert 0.003 < kept.mean() < 0.02
    other = PatchData(out / "train.h5", pixel_keep=(0.01, 6))
    assert not np.array_equal(kept, other.batch(index)["valid"][..., 0] > 0)
    c = sparse.batch(index, np.random.default_rng(1))
    moved = c["valid"][..., 0] > 0
    assert kept.sum() == moved.sum()
    assert np.allclose(np.sort(a["x"][kept], axis=None), np.sort(c["x"][moved], axis=None))  # the same pixels, moved
    for data in (full, sparse, other):
        data.close()

