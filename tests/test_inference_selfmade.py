"""InferenceDA/InferenceClouds, the COG, bad input and the generator loader with weights the tests make themselves
(random networks saved in the project's Keras 3 format): these never skip. The golden comparisons with the
published weights are in ``test_inference.py``."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import h5py
import luigi
import numpy as np
import pytest

from pvl8da.errors import InputError
from pvl8da.inference.products import HALO, Tiling, infer_clouds, infer_da
from pvl8da.sensors.probav import PV_BANDS, ProbaVProduct, band_path
from pvl8da.storage.atomic import save_json_atomic
from tasks.inference import InferenceDA
from test_inference import assert_cog_matches, read_result, sha256
from test_probav import write_pv


@pytest.fixture(scope="module")
def selfmade(tmp_path_factory):
    """A random cloud U-Net and a random generator (df 64, batchnorm: the published settings), saved as
    ``.weights.h5`` without a config."""
    from pvl8da.models.da import build_cloud_unet, build_generator

    folder = tmp_path_factory.mktemp("selfmade_weights")
    weights = {"cloud_detection_weights": folder / "unet.weights.h5", "dagans_weights": folder / "gen.weights.h5"}
    build_cloud_unet().save_weights(weights["cloud_detection_weights"])
    build_generator().save_weights(weights["dagans_weights"])
    return weights


@pytest.fixture(scope="module")
def selfmade_run(selfmade, tmp_path_factory):
    """InferenceDA with the self-made weights on a 150 × 130 product, 64-pixel tiles."""
    folder = tmp_path_factory.mktemp("selfmade_run")
    src = write_pv(folder / "pv.HDF5", shape=(150, 130), invalid_box=(slice(0, 9), slice(20, 70)))
    digest = sha256(src)
    outputs = infer_da(src, folder / "adapted.HDF5", **selfmade, tiling=Tiling(tile=64))
    assert sha256(src) == digest
    return src, outputs


def test_selfmade_tile_size_does_not_matter(selfmade_run, selfmade, tmp_path):
    src, outputs = selfmade_run
    whole = infer_da(src, tmp_path / "whole.HDF5", **selfmade, tiling=Tiling(tile=512), quicklook=False)
    dn_small, cm_small = read_result(outputs.product)
    dn_whole, cm_whole = read_result(whole.product)
    assert np.abs(cm_small - cm_whole).max() <= 1e-4
    assert np.abs(dn_small.astype(int) - dn_whole).max() <= 1
    with ProbaVProduct(src) as pv:
        invalid = pv.invalid()
    assert invalid.any() and (cm_small[invalid] == -1).all() and (dn_small[invalid] == -1).all()
    assert ((cm_small[~invalid] >= 0) & (cm_small[~invalid] <= 1)).all()


def test_selfmade_output_is_a_copy_with_cog_and_quicklook(selfmade_run):
    src, outputs = selfmade_run
    with h5py.File(src, "r") as a, h5py.File(outputs.product, "r") as b:
        assert np.array_equal(a["LEVEL2A/QUALITY/SM"][:], b["LEVEL2A/QUALITY/SM"][:])
        assert np.array_equal(a[band_path("RED")].attrs["MAPPING"], b[band_path("RED")].attrs["MAPPING"])
    assert_cog_matches(src, outputs)
    assert outputs.quicklook.is_file()



def test_selfmade_no_adaptation_and_landsat_clouds(tmp_path, selfmade):
    unet = selfmade["cloud_detection_weights"]
    src = write_pv(tmp_path / "pv.HDF5", shape=(40, 52), invalid_box=(slice(0, 5), slice(0, 52)))
    out = infer_da(src, tmp_path / "raw.HDF5", unet, None, adaptation=False)
    with h5py.File(src, "r") as a, h5py.File(out.product, "r") as b:
        assert np.array_equal(a[band_path("NIR")][:], b[band_path("NIR")][:])
        cm = b["CM_UNET"][:]
    assert (cm[:5] == -1).all() and ((cm[5:] >= 0) & (cm[5:] <= 1)).all()
    landsat = write_pv(tmp_path / "l8.HDF5", shape=(40, 52), sm=False)
    with h5py.File(landsat, "r+") as f:
        f[band_path("SWIR")][30:, :10] = -2000
    res = infer_clouds(landsat, tmp_path / "l8_clouds.HDF5", unet)
    with h5py.File(res.product, "r") as b:
        cm = b["CM_UNET"][:]
    assert (cm[30:, :10] == -1).all() and (cm >= 0).sum() == cm.size - 100 and res.cog.is_file()


@pytest.mark.parametrize("case", ["no_sm", "other_weights", "dest_is_input", "missing_folder"])
def test_selfmade_bad_input_writes_nothing(tmp_path, selfmade, case):
    src = write_pv(tmp_path / "pv.HDF5", sm=case != "no_sm")
    digest, before = sha256(src), set(tmp_path.iterdir())
    dest = {"dest_is_input": src, "missing_folder": tmp_path / "nowhere" / "out.HDF5"}.get(case, tmp_path / "out.HDF5")
    kwargs = dict(selfmade)
    if case == "other_weights":
        kwargs["dagans_weights"] = selfmade["cloud_detection_weights"]
    match = {"no_sm": "pv.HDF5.*LEVEL2A/QUALITY/SM", "other_weights": "unet.weights.h5.*generator_block_1_conv_1",
             "dest_is_input": "destination is the input", "missing_folder": "destination folder .* does not exist"}[case]
    with pytest.raises(InputError, match=match):
        infer_da(src, dest, **kwargs)
    assert sha256(src) == digest and set(tmp_path.iterdir()) == before


def test_selfmade_task_missing_weights_message_and_run(tmp_path, selfmade):
    src = write_pv(tmp_path / "pv.HDF5", shape=(24, 36))
    unet = str(selfmade["cloud_detection_weights"])
    task = InferenceDA(pvimage=str(src), image_dest=str(tmp_path / "a.HDF5"), cloud_detection_weights=unet,
                       dagans_weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(InputError, match="missing.weights.h5 not found.*--dagans-weights"):
        task.run()
    task = InferenceDA(pvimage=str(src), image_dest=str(tmp_path / "a.HDF5"), cloud_detection_weights=unet,
                       dagans_weights=str(selfmade["dagans_weights"]))
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert all(Path(t.path).is_file() for t in task.output().values())


def _trained_generator(folder: Path):
    """A random ``df_gen 32``, instance-norm PV -> LU generator saved where and as TrainCycleGAN saves it."""
    from pvl8da.models.da import build_generator
    from pvl8da.training.cyclegan_config import CycleGANConfig, output_paths

    config = CycleGANConfig(df_gen=32, normtype="instancenorm", suffix="small")
    paths = output_paths(folder, config)
    generator = build_generator(df=32, normtype="instancenorm")
    rng = np.random.default_rng(1)  # learnt features at full scale, not the identity start
    generator.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) if w.ndim == 4 and "normalization" not in v.path
                           else w for w, v in zip(generator.get_weights(), generator.weights)])
    generator.save_weights(paths["generator"])
    save_json_atomic(asdict(config), paths["config"])
    return generator, paths["generator"]


def test_generator_with_its_own_settings_runs_in_inference_and_evaluation(tmp_path, selfmade):
    """A generator trained with --df-gen 32 --normtype instancenorm is built as trained, in InferenceDA as in
    EvaluateDA, and InferenceDA writes what the generator gives."""
    from pvl8da.evaluation.da import load_models as evaluation_models
    from pvl8da.inference.products import load_models as inference_models

    generator, path = _trained_generator(tmp_path)
    src = write_pv(tmp_path / "pv.HDF5", shape=(40, 44))
    out = infer_da(src, tmp_path / "adapted.HDF5", selfmade["cloud_detection_weights"], path,
                   tiling=Tiling(tile=64), quicklook=False)
    dn, cm = read_result(out.product)
    with ProbaVProduct(src) as pv:
        toa = pv.read_toa()
    # the one tile: the image reflect-padded by the halo, to 64 + 2 halo pixels (instance norm sees the block)
    block = np.pad(toa, ((HALO, 64 + HALO - toa.shape[0]), (HALO, 64 + HALO - toa.shape[1]), (0, 0)), mode="reflect")
    direct = np.clip(generator(block[None].astype(np.float32), training=False).numpy()[0], 0, 2)
    expected_dn = np.round(direct[HALO:HALO + 40, HALO:HALO + 44] * 2000)
    assert np.abs(dn - expected_dn).max() <= 1 and ((cm >= 0) & (cm <= 1)).all()
    from_inference = inference_models(selfmade["cloud_detection_weights"], path)[1]
    from_evaluation = evaluation_models(selfmade["cloud_detection_weights"], {"small": path})[1]["small"]
    epoch_file = path.with_name(path.name.removesuffix(".weights.h5") + "_epochs") / "epoch_001.weights.h5"
    epoch_file.parent.mkdir()
    generator.save_weights(epoch_file)  # a per-epoch generator takes the run's settings too
    from_epochs = evaluation_models(selfmade["cloud_detection_weights"], {"e1": epoch_file})[1]["e1"]
    for loaded in (from_inference, from_evaluation, from_epochs):
        assert np.array_equal(loaded(block[None], training=False), generator(block[None], training=False))


def test_selfmade_predict_window_matches_the_written_product(selfmade_run, selfmade):
    """EvaluateDA's window prediction scores exactly what InferenceDA writes."""
    from pvl8da.evaluation.da import predict_product_window
    from pvl8da.inference.products import TilePredictor, load_models

    src, outputs = selfmade_run
    window = (slice(21, 118), slice(37, 129))  # off the 4-pixel grid, without its context
    unet, generator = load_models(selfmade["cloud_detection_weights"], selfmade["dagans_weights"])
    with ProbaVProduct(src) as pv:
        valid = ~pv.invalid(window)
        scale, offset = zip(*(pv.scale_offset(b) for b in PV_BANDS))
        clouds = predict_product_window(pv, window, TilePredictor(unet, generator, Tiling(tile=32), scale, offset))
    written = read_result(outputs.product)[1][window]
    assert np.abs(clouds[valid] - written[valid]).max() <= 1e-4
