"""Weights integrity: SHA-256 of the committed checkpoints and the published files, plausible values in every file."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pvl8da.storage.download import file_digest
from pvl8da.errors import InputError
from pvl8da.models.da import MAX_ABS_WEIGHT, build_cloud_unet, build_generator, load_weights_checked
from pvl8da.storage.published import MANIFEST
from pvl8da.models.weights import SUMS_FILE, read_sums, record_sums

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "checkpoints"
COMMITTED = {"cloud_detection.weights.h5": build_cloud_unet, "dagans_pv2l8.weights.h5": build_generator}
PUBLISHED = {MANIFEST["cloud_detection"].name: build_cloud_unet, MANIFEST["dagans"].name: build_generator}
FLIPPED_BYTES = 4096


def flip_at(path: Path, start: int) -> None:
    """XOR 0xFF over 4 KB of a file from byte ``start``."""
    with open(path, "r+b") as stream:
        stream.seek(start)
        data = bytes(b ^ 0xFF for b in stream.read(FLIPPED_BYTES))
        stream.seek(start)
        stream.write(data)


def flip_bytes(path: Path) -> str:
    """Flip 4 KB in the middle of the file's largest model weight (not optimizer state); its name."""
    with h5py.File(path, "r") as f:
        found = []
        f.visititems(lambda name, obj: found.append((obj.nbytes, name, obj.id.get_offset()))
                     if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer") else None)
    nbytes, name, offset = max(found)
    assert offset is not None and nbytes >= FLIPPED_BYTES, name
    flip_at(path, offset + (nbytes - FLIPPED_BYTES) // 8 * 4)
    return name


def copy_to(src: Path, dest: Path) -> Path:
    shutil.copyfile(src, dest)
    dest.chmod(0o644)
    return dest


def max_abs_and_min_variance(model) -> tuple[float, float]:
    values = {w.path: np.asarray(w) for w in model.weights}
    return (max(float(np.abs(v).max()) for v in values.values()),
            min(float(v.min()) for k, v in values.items() if k.endswith("moving_variance")))


def test_committed_checkpoints_match_their_sums():
    listed = read_sums(CHECKPOINTS / SUMS_FILE)
    assert set(listed) == {p.name for p in CHECKPOINTS.glob("*.weights.h5")} == set(COMMITTED)
    for name, sha256 in listed.items():
        assert file_digest(CHECKPOINTS / name, "sha256") == sha256, name


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_corrupt_committed_checkpoint_is_refused_by_checksum(tmp_path, name):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    copy_to(CHECKPOINTS / SUMS_FILE, folder / SUMS_FILE)
    corrupt = copy_to(CHECKPOINTS / name, folder / name)
    load_weights_checked(COMMITTED[name](), corrupt)
    flip_bytes(corrupt)
    expected, actual = read_sums(folder / SUMS_FILE)[name], file_digest(corrupt, "sha256")
    message = f"{re.escape(str(corrupt))}: corrupt or replaced.*{actual}.*{expected}.*{SUMS_FILE}"
    with pytest.raises(InputError, match=message):
        load_weights_checked(COMMITTED[name](), corrupt)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_corrupt_published_file_is_refused_by_checksum(reference_dir, tmp_path, name):
    corrupt = copy_to(reference_dir / "weights" / name, tmp_path / name)
    flip_bytes(corrupt)
    actual = file_digest(corrupt, "sha256")
    sha256 = next(item.sha256 for item in MANIFEST.values() if item.name == name)
    message = f"{re.escape(str(corrupt))}: corrupt or replaced.*{actual}.*{sha256}.*published"
    with pytest.raises(InputError, match=message):
        load_weights_checked(PUBLISHED[name](), corrupt)


@pytest.mark.parametrize("name", sorted(COMMITTED) + sorted(PUBLISHED))
def test_corrupt_copy_under_another_name_is_refused_by_its_values(reference_dir, tmp_path, name):
    src = CHECKPOINTS / name if name in COMMITTED else reference_dir / "weights" / name
    build = {**COMMITTED, **PUBLISHED}[name]
    corrupt = copy_to(src, tmp_path / f"renamed_{name}")
    dataset = flip_bytes(corrupt)
    with pytest.raises(InputError, match=f"{re.escape(str(corrupt))}: implausible weights in layer '[^']+'") as info:
        load_weights_checked(build(), corrupt)
    assert ("NaN or infinite" in str(info.value) or "above the plausible" in str(info.value)
            or "negative moving variance" in str(info.value)), dataset


@pytest.mark.parametrize("name", sorted(COMMITTED) + sorted(PUBLISHED))
def test_real_weights_pass_the_value_checks_with_margin(reference_dir, name):
    path = CHECKPOINTS / name if name in COMMITTED else reference_dir / "weights" / name
    model = load_weights_checked({**COMMITTED, **PUBLISHED}[name](), path)
    largest, smallest_variance = max_abs_and_min_variance(model)
    assert largest < MAX_ABS_WEIGHT / 100 and smallest_variance >= 0


@pytest.fixture(scope="module")
def random_unet(tmp_path_factory) -> Path:
    """A randomly initialised U-Net saved by Keras 3 (no SHA256SUMS beside it)."""
    path = tmp_path_factory.mktemp("random") / "unet.weights.h5"
    build_cloud_unet().save_weights(path)
    return path


@pytest.mark.parametrize("layer, weight, value, problem", [
    ("input_conv_1", "depthwise_kernel", np.nan, "NaN or infinite"),
    ("up2_conv_2", "bias", np.inf, "NaN or infinite"),
    ("pool2_conv_1", "pointwise_kernel", -2e4, "above the plausible"),
    ("up1_bn_2", "moving_variance", -0.5, "negative moving variance"),
])
def test_implausible_values_are_refused_naming_the_layer(random_unet, tmp_path, layer, weight, value, problem):
    model = load_weights_checked(build_cloud_unet(), random_unet)
    variable = next(w for w in model.get_layer(layer).weights if w.name == weight)
    values = np.asarray(variable).copy()
    values.flat[values.size // 2] = value
    variable.assign(values)
    bad = tmp_path / "bad.weights.h5"
    model.save_weights(bad)
    message = f"{re.escape(str(bad))}: implausible weights in layer '{layer}' \\({weight}\\): .*{problem}"
    with pytest.raises(InputError, match=message):
        load_weights_checked(build_cloud_unet(), bad)


def test_recorded_sums_guard_a_folder_and_follow_a_retrained_file(random_unet, tmp_path):
    path = copy_to(random_unet, tmp_path / "cloud_detection.weights.h5")
    record_sums([path])
    assert read_sums(tmp_path / SUMS_FILE) == {path.name: file_digest(path, "sha256")}
    load_weights_checked(build_cloud_unet(), path)
    model = build_cloud_unet()  # retrained: other (random) weights under the same name
    model.save_weights(path)
    with pytest.raises(InputError, match="corrupt or replaced.*record its new sum.*record_sums"):
        load_weights_checked(build_cloud_unet(), path)
    record_sums([path])
    load_weights_checked(build_cloud_unet(), path)


def test_another_model_under_a_published_name_is_refused(random_unet, tmp_path):
    renamed = copy_to(random_unet, tmp_path / MANIFEST["cloud_detection"].name)
    with pytest.raises(InputError, match="corrupt or replaced.*give another model another file name"):
        load_weights_checked(build_cloud_unet(), renamed)


def test_damaged_file_structure_is_an_input_error(random_unet, tmp_path):
    damaged = copy_to(random_unet, tmp_path / "damaged.weights.h5")
    flip_at(damaged, 4096)  # HDF5 metadata (the groups' local heaps), not weight data: h5py raises RuntimeError
    with pytest.raises(InputError, match=f"{re.escape(str(damaged))}: cannot load weights into model 'cloud_unet'"):
        load_weights_checked(build_cloud_unet(), damaged)
