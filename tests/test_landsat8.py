"""Landsat-8 scene reader: TOA, brightness temperature, quality masks, windows, labels, bad input."""
import math
import shutil

import h5py
import numpy as np
import pytest
from rasterio.windows import Window

from pvl8da.conversion import convert_scene
from pvl8da.errors import InputError
from pvl8da.sensors.landsat8 import open_scene
from pvl8da.synthetic import write_landsat8_scene


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("l8")
    c1 = write_landsat8_scene(root, shape=(96, 80), seed=11, collection=1, with_biome_mask=True,
                              with_38cloud_gt=True)
    c2 = write_landsat8_scene(root, shape=(96, 80), seed=11, collection=2)
    pre = write_landsat8_scene(root, shape=(96, 80), seed=11, collection=0)
    l9 = write_landsat8_scene(root, shape=(96, 80), seed=11, collection=2, satellite=9)
    return c1, c2, pre, l9


def test_toa_and_brightness_temperature_by_hand(reference_dir):
    scene = open_scene(reference_dir / "golden/convert/LC80010112014080LGN00", "biome")
    dn1 = int(scene.read_dn(1)[300, 400])
    dn10 = int(scene.read_dn(10)[300, 400])
    assert dn1 > 0 and dn10 > 0
    expected_toa = (dn1 * 2.0e-5 - 0.1) / math.sin(math.radians(58.5))
    assert scene.toa(1)[300, 400] == pytest.approx(expected_toa, rel=1e-5)
    radiance = dn10 * 3.342e-4 + 0.1
    expected_bt = 1321.0789 / math.log(774.8853 / radiance + 1)
    assert scene.brightness_temperature(10)[300, 400] == pytest.approx(expected_bt, rel=1e-5)
    with pytest.raises(ValueError):
        scene.toa(10)


def test_generations_agree_on_masks(scenes):
    c1, c2, pre, l9 = (open_scene(p) for p in scenes)
    assert (pre.collection, c1.collection, c2.collection, l9.collection) == (0, 1, 2, 2)
    assert pre.scene_id == "LC80120012016141LGN00"
    assert c1.scene_id == "LC08_L1TP_012001_20160520_20160520_01_T1"
    assert c2.scene_id == "LC08_L1TP_012001_20160520_20160520_02_T1"
    assert l9.scene_id.startswith("LC09_L1TP_") and l9.mtl.spacecraft == "LANDSAT_9"
    assert pre.quality_path.name.endswith("_BQA.TIF") and c1.quality_path.name.endswith("_BQA.TIF")
    assert c2.quality_path.name.endswith("_QA_PIXEL.TIF")
    # each generation writes its own layout: pre-collection bit 4 is water confidence (set on clear land),
    # cloud sets the cloud confidence bits 14-15
    qa_pre, qa_c1 = pre.quality(), c1.quality()
    cloud = c1.cfmask_cloud()
    assert cloud.any() and ((qa_pre >> 4) & 1)[~cloud & ~pre.fill()].all() and np.all((qa_pre[cloud] >> 14) == 3)
    assert np.all((qa_c1[cloud] >> 4) & 1)
    for other in (c2, pre, l9):
        np.testing.assert_array_equal(c1.fill(), other.fill())
        np.testing.assert_array_equal(cloud, other.cfmask_cloud())
        np.testing.assert_array_equal(c1.toa(4), other.toa(4))
    assert pre.quality_masks().shadow is None and c1.quality_masks().shadow.any()
    assert 0.05 < c1.fill().mean() < 0.6
    assert np.all(c1.read_dn(2)[c1.fill()] == 0) and np.all(c1.read_dn(2)[~c1.fill()] > 0)
    assert c1.crs == c2.crs and c1.crs.to_epsg() == 32631


def test_window_reads_match_whole(scenes):
    scene = open_scene(scenes[0], "biome")
    window = Window(7, 13, 40, 21)
    rows, cols = window.toslices()
    np.testing.assert_array_equal(scene.toa(5, window), scene.toa(5)[rows, cols])
    np.testing.assert_array_equal(scene.cloud_mask(window), scene.cloud_mask()[rows, cols])
    np.testing.assert_array_equal(scene.cfmask_cloud(window), scene.cfmask_cloud()[rows, cols])


def test_biome_and_38cloud_labels(scenes):
    biome = open_scene(scenes[0], "biome")
    gt38 = open_scene(scenes[0], "38c")
    mask = biome.cloud_mask()
    assert set(np.unique(mask)) <= {0, 64, 128, 192, 255}
    labels = biome.labels()
    assert np.all(labels[mask == 0] == 0.5)
    assert np.all(labels[(mask == 255) | (mask == 192)] == 1)
    np.testing.assert_array_equal(biome.invalid(), mask == 0)
    np.testing.assert_array_equal(gt38.cloud(), biome.cloud())
    assert open_scene(scenes[0]).labels() is None


def test_landsat9_converts_like_landsat8(scenes, tmp_path):
    l8 = convert_scene(scenes[1], tmp_path / "l8", progress=False)
    l9 = convert_scene(scenes[3], tmp_path / "l9", progress=False)
    assert l9.name.startswith("LC09_L1TP_")
    with h5py.File(l8) as a, h5py.File(l9) as b:
        for band in ("BLUE", "RED", "NIR", "SWIR"):
            key = f"LEVEL2A/RADIOMETRY/{band}/TOA"
            np.testing.assert_array_equal(a[key][()], b[key][()])


def _copy(scene, tmp_path):
    copy = tmp_path / scene.name
    shutil.copytree(scene, copy)
    return copy


def test_quality_band_must_match_generation(scenes, tmp_path):
    c2 = _copy(scenes[1], tmp_path)
    (c2 / f"{c2.name}_QA_PIXEL.TIF").rename(c2 / f"{c2.name}_BQA.TIF")
    with pytest.raises(InputError, match=f"{c2.name}_BQA.TIF: a BQA quality band in a Collection 2 scene"):
        open_scene(c2)
    c1 = _copy(scenes[0], tmp_path)
    mtl = c1 / f"{c1.name}_MTL.txt"
    mtl.write_text(mtl.read_text().replace("_BQA.TIF", "_QA_PIXEL.TIF"))
    with pytest.raises(InputError, match="QA_PIXEL.TIF: quality band name does not match the Collection 1 MTL"):
        open_scene(c1)


def test_other_spacecraft_refused(scenes, tmp_path):
    c2 = _copy(scenes[1], tmp_path)
    mtl = c2 / f"{c2.name}_MTL.txt"
    mtl.write_text(mtl.read_text().replace("LANDSAT_8", "LANDSAT_7"))
    with pytest.raises(InputError, match="_MTL.txt: SPACECRAFT_ID LANDSAT_7 is not Landsat 8 or 9"):
        open_scene(c2)


def test_bad_inputs(scenes, tmp_path):
    broken = tmp_path / scenes[0].name
    shutil.copytree(scenes[0], broken)
    (broken / f"{broken.name}_fixedmask.img").unlink()
    with pytest.raises(InputError, match="fixedmask.img"):
        open_scene(broken, "biome")
    (broken / f"{broken.name}_B6.TIF").unlink()
    with pytest.raises(InputError, match="_B6.TIF"):
        open_scene(broken)
    with pytest.raises(InputError, match="unknown type of product"):
        open_scene(scenes[0], "sentinel2")
    truncated = tmp_path / "t" / scenes[1].name
    shutil.copytree(scenes[1], truncated)
    band = truncated / f"{truncated.name}_B4.TIF"
    band.write_bytes(band.read_bytes()[: band.stat().st_size // 2])
    with pytest.raises(InputError, match="_B4.TIF"):
        open_scene(truncated).toa(4)


def test_folder_not_named_after_its_scene(scenes, tmp_path):
    """Band, quality and MTL names come from the files, and ConvertPV's product carries the scene ID."""
    import luigi

    from tasks.convert import ConvertPV

    folder = tmp_path / "downloads" / "my scene"
    shutil.copytree(scenes[0], folder)
    scene = open_scene(folder)
    assert scene.scene_id == scenes[0].name and scene.quality_path.parent == folder
    task = ConvertPV(l8img=str(folder), outfolder=str(tmp_path / "out"))
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert task.output()["product"].path == str(tmp_path / "out" / f"{scenes[0].name}_333M.HDF5") and task.complete()


def test_fixedmask_that_is_not_8_bit_is_refused(scenes, tmp_path):
    import spectral.io.envi as envi

    scene = tmp_path / scenes[0].name
    shutil.copytree(scenes[0], scene)
    classes = open_scene(scene, "biome").cloud_mask()
    stem = scene / f"{scene.name}_fixedmask"
    envi.save_image(f"{stem}.hdr", classes.astype(np.int16), dtype=np.int16, interleave="bsq", ext=".img",
                    force=True)
    with pytest.raises(InputError, match="fixedmask.hdr: fixedmask of type int16; the Biome masks are 8-bit"):
        open_scene(scene, "biome").labels()
