"""Pseudo-simultaneous pairs: time window, overlap, co-registration, patch cutting, bad input."""
from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pytest

from pvl8da.datasets import pairs
from pvl8da.errors import InputError
from pvl8da.sensors.probav import ProbaVProduct

WHEN = dt.datetime(2016, 5, 20, 10, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A synthetic Landsat scene converted to Proba-V, a simultaneous Proba-V product, one 3 h later, one elsewhere."""
    from pvl8da import conversion, synthetic

    root = tmp_path_factory.mktemp("pairs")
    scene = synthetic.write_landsat8_scene(root / "l8", shape=(1024, 1024), seed=7, acquired=WHEN,
                                           with_biome_mask=True, with_pan=False)
    product = conversion.convert_scene(scene, root / "lu", "333M", "biome", progress=False)
    common = dict(shape=(160, 200), seed=7)
    return {
        "root": root, "scene": scene, "lu": product,
        "pv": synthetic.write_probav_product(root / "pv", acquired=WHEN, **common),
        "late": synthetic.write_probav_product(root / "late", acquired=WHEN + dt.timedelta(hours=3), **common),
        "far": synthetic.write_probav_product(root / "far", acquired=WHEN, lat=-20.0, lon=30.0, **common),
    }


def test_patch_origins_only_fully_valid_windows():
    valid = np.ones((8, 10), bool)
    valid[5, 1] = False
    origins = pairs.patch_origins(valid, size=4, stride=2)
    # rows 0, 2, 4 × cols 0, 2, 4, 6; the invalid pixel (5, 1) spoils windows starting at row 2 or 4, col 0
    expected = {(r, c) for r in (0, 2, 4) for c in (0, 2, 4, 6)} - {(2, 0), (4, 0)}
    assert {tuple(o) for o in origins} == expected
    assert pairs.patch_origins(np.ones((3, 3), bool), size=4, stride=2).shape == (0, 2)


def test_time_gap():
    start, end = dt.datetime(2016, 1, 1, 10, 0), dt.datetime(2016, 1, 1, 10, 1)
    assert pairs.time_gap(start, end, dt.datetime(2016, 1, 1, 10, 0, 30)) == dt.timedelta(0)
    assert pairs.time_gap(start, end, dt.datetime(2016, 1, 1, 9, 0)) == dt.timedelta(hours=1)
    assert pairs.time_gap(start, end, dt.datetime(2016, 1, 1, 12, 1, tzinfo=dt.timezone.utc)) == dt.timedelta(hours=2)


def test_read_pairs_csv(tmp_path):
    (tmp_path / "p.csv").write_text("pvimage,l8img,type_product\npv/a.HDF5,l8/S1,biome\npv/b.HDF5,l8/S2,38c\n")
    found = pairs.read_pairs_csv(tmp_path / "p.csv")
    assert found[0] == pairs.Pair(tmp_path / "pv/a.HDF5", tmp_path / "l8/S1", "biome")
    assert found[1].type_product == "38c"
    (tmp_path / "bad.csv").write_text("pv,l8\na,b\n")
    with pytest.raises(InputError, match="bad.csv.*pvimage"):
        pairs.read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "kind.csv").write_text("pvimage,l8img,type_product\na,b,sentinel\n")
    with pytest.raises(InputError, match="kind.csv:2"):
        pairs.read_pairs_csv(tmp_path / "kind.csv")


def test_build_dataset_coregistered_patches(pair, tmp_path):
    dest = tmp_path / pairs.dataset_name(32, 16)
    pairs.build_dataset([pairs.Pair(pair["pv"], pair["scene"])], [pair["lu"]], dest, size=32, stride=16)
    with h5py.File(dest, "r") as f:
        pv, lu, clouds, rowcol = f["PV"][...], f["LU"][...], f["CLOUDS"][...], f["ROWCOL"][...]
        assert pv.shape == lu.shape and pv.shape[1:] == (32, 32, 4) and len(pv) >= 4
        assert clouds.shape == pv.shape[:3] and set(f["PAIR"][...]) == {0}
        assert f["pair_pvimage"][0].decode() == str(pair["pv"])
    assert np.isfinite(pv).all() and np.isfinite(lu).all() and (clouds >= 0).all() and (clouds <= 1).all()
    # the PV patch is the product's own pixels at ROWCOL
    with ProbaVProduct(pair["pv"]) as product:
        r, c = rowcol[0]
        np.testing.assert_allclose(pv[0], product.read_toa((slice(r, r + 32), slice(c, c + 32))))
    # same place and time: Landsat and Proba-V agree up to the simulated radiometric difference
    for band in range(4):
        assert np.corrcoef(pv[..., band].ravel(), lu[..., band].ravel())[0, 1] > 0.9


def test_discover_pairs(pair):
    found = pairs.discover_pairs(pair["root"] / "pv", pair["root"] / "l8")
    assert found == [pairs.Pair(pair["pv"], pair["scene"], "biome")]
    with pytest.raises(InputError, match="no pseudo-simultaneous pair"):
        pairs.discover_pairs(pair["root"] / "late", pair["root"] / "l8")


def test_pairs_further_apart_than_the_window(pair, tmp_path):
    dest = tmp_path / "out.hdf5"
    with pytest.raises(InputError) as err:
        pairs.build_dataset([pairs.Pair(pair["late"], pair["scene"])], [pair["lu"]], dest)
    assert pair["late"].name in str(err.value) and pair["lu"].name in str(err.value) and "window" in str(err.value)
    pairs.build_dataset([pairs.Pair(pair["late"], pair["scene"])], [pair["lu"]], dest, window=dt.timedelta(hours=4),
                        size=32, stride=16)
    assert dest.is_file()


def test_products_that_do_not_overlap(pair, tmp_path):
    with pytest.raises(InputError, match="do not overlap") as err:
        pairs.build_dataset([pairs.Pair(pair["far"], pair["scene"])], [pair["lu"]], tmp_path / "out.hdf5")
    assert pair["far"].name in str(err.value)
    assert not list(tmp_path.iterdir())


def test_no_valid_patch(pair, tmp_path):
    with pytest.raises(InputError, match="no 256-px patch") as err:
        pairs.build_dataset([pairs.Pair(pair["pv"], pair["scene"])], [pair["lu"]], tmp_path / "out.hdf5",
                            size=256, stride=128)
    assert pair["pv"].name in str(err.value)
    assert not list(tmp_path.iterdir())
