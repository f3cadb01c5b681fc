"""Real USGS Landsat-8 files (../shared/realdata): MTL of every generation, TOA and brightness temperature
against another library, real quality-band codes, a real Collection 1 scene folder, a 38-Cloud patch."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from pvl8da.sensors import quality
from pvl8da.conversion import convert_scene
from pvl8da.errors import InputError
from pvl8da.sensors.landsat8 import (CLOUD38_PATCH_BANDS, brightness_temperature, open_scene, read_38cloud_patch,
                             toa_reflectance)
from pvl8da.sensors.mtl import MTL

C1_SCENE = "LC08_L1TP_016037_20170813_20170814_01_RT"
PEER_C1 = "LC08_L1TP_193024_20200509_20200509_01_RT"
PEER_BANDS = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)
PATCH_38C = "patch_192_10_by_12_LC08_L1TP_002053_20160520_20170324_01_T1"

# Every real MTL here: generation, scene ID, sun elevation, acquisition date, reflectance rescaling of band 4.
MTLS = {
    "mtl/LC80100202015018LGN00_MTL.txt": (0, "LC80100202015018LGN00"),
    "mtl/LC81060712016134LGN00_MTL.txt": (0, "LC81060712016134LGN00"),
    f"c1_{C1_SCENE}/{C1_SCENE}_MTL.txt": (1, C1_SCENE),
    f"peer_toa/{PEER_C1}_MTL.txt": (1, PEER_C1),
    "mtl/mtltest_v2_LC08_L1TP_188018_20200927_20201005_02_T1_MTL.txt": (2, "LC08_L1TP_188018_20200927_20201005_02_T1"),
    "mtl/mtltest_v3_LC08_L1TP_009057_20141023_20200910_02_T1_MTL.txt": (2, "LC08_L1TP_009057_20141023_20200910_02_T1"),
    "mtl/LC08_L2SP_001062_20201031_20201106_02_T2_MTL.txt": (2, "LC08_L2SP_001062_20201031_20201106_02_T2"),
}

# Real quality-band codes found in the files below, and what they mean (fill, flag, cloud confidence
# medium or high, cirrus, shadow, snow); None where the generation has no such field.
QA_CODES = {
    quality.PRE_COLLECTION: {  # qa/LC81070352015282LGN00_BQA.TIF
        1: (True, False, False, False, None, False),
        20480: (False, False, False, False, None, False),     # cloud and cirrus confidence low
        20512: (False, False, False, False, None, False),     # + water confidence medium (bit 4 set is not cloud)
        53248: (False, True, True, False, None, False),       # cloud confidence high
        36864: (False, True, True, False, None, False),       # cloud confidence medium
        28672: (False, True, False, True, None, False),       # cirrus confidence high
        61440: (False, True, True, True, None, False),        # cloud and cirrus high
        23552: (False, False, False, False, None, True),      # snow/ice high
        39936: (False, True, True, False, None, True),        # snow high, cloud medium
    },
    quality.COLLECTION_1: {  # c1 scene BQA and qa/LC08_L1TP_005004_20170410_20170414_01_T1_BQA.TIF
        1: (True, False, False, False, False, False),
        2720: (False, False, False, False, False, False),     # all confidences low: clear
        2800: (False, True, True, False, False, False),       # cloud bit 4, cloud confidence high
        2752: (False, False, True, False, False, False),      # cloud confidence medium, no cloud bit
        2976: (False, False, False, False, True, False),      # cloud shadow high
        3008: (False, False, True, False, True, False),       # shadow high, cloud confidence medium
        3744: (False, False, False, False, False, True),      # snow/ice high
        6896: (False, True, True, True, False, False),        # cloud and cirrus high
        7840: (False, False, False, True, False, True),       # snow and cirrus high
    },
    quality.COLLECTION_2: {  # mtl/LC08_L2SP_001062_20201031_20201106_02_T2_QA_PIXEL.TIF
        1: (True, False, False, False, False, False),
        55052: (False, True, True, True, False, False),       # cloud, cirrus, cloud confidence high
        22280: (False, True, True, False, False, False),      # cloud, cloud confidence high
        23888: (False, False, False, False, True, False),     # cloud shadow (clear bit set too)
    },
}
QA_FILES = {
    quality.PRE_COLLECTION: ["qa/LC81070352015282LGN00_BQA.TIF"],
    quality.COLLECTION_1: [f"c1_{C1_SCENE}/{C1_SCENE}_BQA.TIF", "qa/LC08_L1TP_005004_20170410_20170414_01_T1_BQA.TIF"],
    quality.COLLECTION_2: ["mtl/LC08_L2SP_001062_20201031_20201106_02_T2_QA_PIXEL.TIF"],
}


def _read(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()


@pytest.mark.parametrize("name", sorted(MTLS))
def test_real_mtl_of_every_generation(realdata_dir, name):
    generation, scene_id = MTLS[name]
    mtl = MTL.read(realdata_dir / name)
    assert (mtl.collection, mtl.scene_id, mtl.spacecraft) == (generation, scene_id, "LANDSAT_8")
    assert 0 < mtl.sun_elevation < 90 and 0 <= mtl.sun_azimuth <= 360 and 0 <= mtl.cloud_cover <= 100
    mult, add = mtl.reflectance_rescaling(4)
    assert (mult, add) == (2e-5, -0.1)
    assert mtl.thermal_constants(10)[0] == pytest.approx(774.89, abs=0.01)
    when = mtl.acquisition_time
    assert when.tzinfo is not None
    assert (f"{when:%Y%m%d}" if generation else f"{when:%Y%j}") in scene_id


def test_pre_collection_mtl_json(realdata_dir):
    mtl = MTL(json.loads((realdata_dir / "peer_toa/LC81390452014295LGN00_MTL.json").read_text()))
    assert mtl.collection == quality.PRE_COLLECTION and mtl.scene_id == "LC81390452014295LGN00"


def test_toa_and_brightness_temperature_against_peer(realdata_dir):
    folder = realdata_dir / "peer_toa"
    mtl = MTL.read(folder / f"{PEER_C1}_MTL.txt")
    dn, peer = _read(folder / f"{PEER_C1}.tif"), _read(folder / f"{PEER_C1}_toa.tif")
    assert dn.shape == peer.shape == (10, 10, 10)
    for i, band in enumerate(PEER_BANDS):
        if band < 10:
            np.testing.assert_allclose(toa_reflectance(dn[i], mtl, band), peer[i], rtol=0, atol=1e-5)
        else:  # kelvin in float32: one ulp at 295 K is 3e-5 K
            np.testing.assert_allclose(brightness_temperature(dn[i], mtl, band), peer[i], rtol=1e-5)


def test_pre_collection_toa_against_peer(realdata_dir):
    """rio-toa wrote reflectance x 55000 for a pre-collection band 5 at 600 m."""
    folder = realdata_dir / "peer_toa"
    mtl = MTL(json.loads((folder / "LC81390452014295LGN00_MTL.json").read_text()))
    dn = _read(folder / "tiny_LC81390452014295LGN00_B5.TIF")[0]
    peer = _read(folder / "tiny_LC81390452014295LGN00_B5_refl.TIF")[0] / 55000.0
    valid = dn > 0
    assert valid.mean() > 0.5
    np.testing.assert_allclose(toa_reflectance(dn, mtl, 5)[valid], peer[valid], rtol=5e-5)


@pytest.mark.parametrize("generation", quality.GENERATIONS)
def test_real_quality_codes_decode(realdata_dir, generation):
    found = set()
    for name in QA_FILES[generation]:
        found |= set(np.unique(_read(realdata_dir / name)).tolist())
    assert set(QA_CODES[generation]) <= found, "the table lists real codes only"
    codes = np.array(sorted(QA_CODES[generation]), np.uint16)
    masks = quality.decode(codes, generation)
    flag = quality.cloud_flag(codes, generation)
    for i, code in enumerate(codes):
        fill, cloud_flag, confidence, cirrus, shadow, snow = QA_CODES[generation][int(code)]
        got = (masks.fill[i], flag[i], masks.cloud_confidence[i], masks.cirrus[i],
               None if masks.shadow is None else masks.shadow[i], masks.snow[i])
        assert got == (fill, cloud_flag, confidence, cirrus, shadow, snow), code


def test_pre_collection_flag_is_not_bit_4(realdata_dir):
    """On the real pre-collection BQA bit 4 (water confidence) flags nothing; the flag is bits 15 or 13."""
    qa = _read(realdata_dir / QA_FILES[quality.PRE_COLLECTION][0])[0]
    valid = (qa & 1) == 0
    flag = quality.cloud_flag(qa, quality.PRE_COLLECTION)
    assert 0.02 < flag[valid].mean() < 0.03
    assert flag[valid].mean() > (((qa >> 14) & 3) == 3)[valid].mean()
    assert not flag[~valid].any()
    assert quality.cloud_flag(qa, quality.COLLECTION_1)[valid].mean() == 0  # the old reading


def test_real_collection1_scene_folder(realdata_dir, tmp_path):
    scene = open_scene(realdata_dir / f"c1_{C1_SCENE}")
    assert scene.scene_id == C1_SCENE and scene.collection == 1 and scene.crs.to_epsg() == 32617
    assert scene.shape == (259, 255) and scene.pixel_size == (900.0, 900.0)
    assert scene.quality_path.name == f"{C1_SCENE}_BQA.TIF"
    fill = scene.fill()
    assert 0.25 < fill.mean() < 0.4 and (scene.read_dn(4)[fill] == 0).mean() > 0.9  # 95 %: downsampled edges mix
    toa = scene.toa(4)[~fill]
    assert 0 < np.median(toa) < 0.5
    cloud = scene.cfmask_cloud()
    assert 0.1 < cloud.mean() < 0.3 and not cloud[fill].any()
    masks = scene.quality_masks()
    assert masks.shadow.any() and masks.cirrus.any() and masks.cloud.sum() == cloud.sum()
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"_B1\.TIF: pixels of 900 x 900 m.*30 m"):
        convert_scene(scene.folder, out)
    assert not out.exists()


def test_real_38cloud_patch(realdata_dir):
    dn, mask = read_38cloud_patch(realdata_dir / "38cloud", PATCH_38C)
    assert dn.shape == (len(CLOUD38_PATCH_BANDS), 384, 384) and dn.dtype == np.uint16
    assert mask.dtype == bool and 0.2 < mask.mean() < 0.4
    # clouds are bright: the red DN over the mask is well above the clear pixels'
    red = dn[CLOUD38_PATCH_BANDS.index("red")]
    assert np.median(red[mask]) > np.median(red[~mask])
    with pytest.raises(InputError, match="red_patch_nope.TIF"):
        read_38cloud_patch(realdata_dir / "38cloud", "patch_nope", with_mask=True)
