"""MTL parsing (Collection 1 and 2), typed values, round trip and errors."""
import codecs
import datetime as dt
import logging

import pytest

from pvl8da.errors import InputError
from pvl8da.sensors.mtl import MTL, format_mtl, parse_mtl, parse_mtl_text

C2_TEXT = """GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    LANDSAT_PRODUCT_ID = "LC08_L1TP_198030_20200715_20200722_02_T1"
    COLLECTION_NUMBER = 02
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    DATE_ACQUIRED = 2020-07-15
    SCENE_CENTER_TIME = "10:24:06.1234560Z"
    CLOUD_COVER = 12.50
    SUN_AZIMUTH = 135.5
    SUN_ELEVATION = 61.25
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = LEVEL1_RADIOMETRIC_RESCALING
    RADIANCE_MULT_BAND_10 = 3.3420E-04
    RADIANCE_ADD_BAND_10 = 0.10000
    REFLECTANCE_MULT_BAND_4 = 2.0000E-05
    REFLECTANCE_ADD_BAND_4 = -0.100000
  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING
  GROUP = LEVEL1_THERMAL_CONSTANTS
    K1_CONSTANT_BAND_10 = 774.8853
    K2_CONSTANT_BAND_10 = 1321.0789
  END_GROUP = LEVEL1_THERMAL_CONSTANTS
END_GROUP = LANDSAT_METADATA_FILE
END
"""


def test_collection1_reference_mtl(reference_dir):
    path = reference_dir / "golden/convert/LC80010112014080LGN00/LC80010112014080LGN00_MTL.txt"
    tree = parse_mtl(path)
    product = tree["L1_METADATA_FILE"]["PRODUCT_METADATA"]
    assert product["DATE_ACQUIRED"] == dt.date(2016, 5, 20)
    assert product["REFLECTIVE_LINES"] == 768 and isinstance(product["REFLECTIVE_LINES"], int)
    assert product["CORNER_UL_LON_PRODUCT"] == pytest.approx(-1.43513)
    assert product["SPACECRAFT_ID"] == "LANDSAT_8"
    info = tree["L1_METADATA_FILE"]["METADATA_FILE_INFO"]
    assert info["FILE_DATE"] == dt.datetime(2017, 3, 24, 2, 11, 48, tzinfo=dt.timezone.utc)
    mtl = MTL.read(path)
    assert mtl.collection == 0 and mtl.generation == "pre-collection"  # LANDSAT_SCENE_ID, no COLLECTION_NUMBER
    assert mtl.sun_elevation == 58.5
    assert mtl.reflectance_rescaling(1) == (2.0e-5, -0.1)
    assert mtl.thermal_constants(11) == (480.8883, 1201.1442)
    assert mtl.acquisition_time == dt.datetime(2016, 5, 20, 15, 7, 21, 246004, tzinfo=dt.timezone.utc)


def test_collection2_fields():
    mtl = MTL(parse_mtl_text(C2_TEXT))
    assert mtl.collection == 2
    assert mtl.tree["LANDSAT_METADATA_FILE"]["PRODUCT_CONTENTS"]["COLLECTION_NUMBER"] == 2
    assert mtl.sun_elevation == 61.25 and mtl.sun_azimuth == 135.5 and mtl.cloud_cover == 12.5
    assert mtl.reflectance_rescaling(4) == (2.0e-5, -0.1)
    assert mtl.radiance_rescaling(10) == (3.342e-4, 0.1)
    assert mtl.thermal_constants(10) == (774.8853, 1321.0789)
    assert mtl.acquisition_time == dt.datetime(2020, 7, 15, 10, 24, 6, 123456, tzinfo=dt.timezone.utc)


def test_round_trip():
    tree = parse_mtl_text(C2_TEXT)
    assert parse_mtl_text(format_mtl(tree)) == tree


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "X_MTL.txt"
    path.write_bytes(codecs.BOM_UTF8 + C2_TEXT.encode())
    assert parse_mtl(path) == parse_mtl_text(C2_TEXT)
    assert MTL.read(path).collection == 2


def test_non_utf8_byte_is_replaced_with_a_warning(tmp_path, caplog):
    path = tmp_path / "X_MTL.txt"
    path.write_bytes(C2_TEXT.replace("COLLECTION_NUMBER", 'ORIGIN = "caf\xe9"\n    COLLECTION_NUMBER')
                     .encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="pvl8da"):
        tree = parse_mtl(path)
    assert tree["LANDSAT_METADATA_FILE"]["PRODUCT_CONTENTS"]["ORIGIN"] == "caf\ufffd"
    assert f"{path}: line 4 is not UTF-8 (byte 0xe9)" in caplog.text


def test_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "X_MTL.txt"
    path.write_text(C2_TEXT.replace("    SUN_ELEVATION = 61.25\n", ""))
    with pytest.raises(InputError, match=r"X_MTL.txt.*SUN_ELEVATION"):
        MTL.read(path).sun_elevation


@pytest.mark.parametrize("text, message", [
    (C2_TEXT[: C2_TEXT.index("END_GROUP = LEVEL1_THERMAL")], "never closed"),
    ("GROUP = A\nEND_GROUP = B\nEND\n", "closes no open group"),
    ("GROUP = OTHER\nEND_GROUP = OTHER\nEND\n", "neither"),
    ("not metadata\n", "not 'KEY = VALUE'"),
])
def test_malformed(text, message, tmp_path):
    path = tmp_path / "bad_MTL.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        MTL.read(path)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("LANDSAT_METADATA_FILE", "L1_METADATA_FILE").replace("    COLLECTION_NUMBER = 02\n", "")
     .replace('    LANDSAT_PRODUCT_ID = "LC08_L1TP_198030_20200715_20200722_02_T1"\n', ""),
     "cannot tell the product generation: no COLLECTION_NUMBER and no pre-collection LANDSAT_SCENE_ID"),
    (lambda t: t.replace("COLLECTION_NUMBER = 02", "COLLECTION_NUMBER = 03"),
     "cannot tell the product generation: COLLECTION_NUMBER = 3"),
    (lambda t: t.replace("COLLECTION_NUMBER = 02", "COLLECTION_NUMBER = 01"),
     "cannot tell the product generation: COLLECTION_NUMBER = 1 in LANDSAT_METADATA_FILE"),
    (lambda t: t.replace("LANDSAT_METADATA_FILE", "L1_METADATA_FILE").replace("COLLECTION_NUMBER = 02",
                                                                              "COLLECTION_NUMBER = 01"),
     "LANDSAT_PRODUCT_ID LC08_L1TP_198030_20200715_20200722_02_T1 contradicts COLLECTION_NUMBER = 01"),
])
def test_generation_that_cannot_be_told(tmp_path, edit, message):
    path = tmp_path / "X_MTL.txt"
    path.write_text(edit(C2_TEXT))
    with pytest.raises(InputError, match=f"{path}: {message}"):
        MTL.read(path)
