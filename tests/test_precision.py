"""Reduced precision (``--precision``): refused without hardware support, close to float32 where it runs, in
inference (the golden product through the README's command) and in each trainer (one step, float32 weights)."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from pvl8da import runtime
from pvl8da.errors import InputError
from pvl8da.storage import provenance
from pvl8da.models import da as models
from pvl8da.training import cyclegan as cg
from pvl8da.training.configs import GANConfig, UNetConfig
from test_cli import assert_ok, luigi_cli, write_config
from test_inference import GOLDEN

BF16 = True
try:
    runtime.check_precision("bfloat16")
except InputError:
    BF16 = False
needs_bf16 = pytest.mark.skipif(not BF16, reason="no bfloat16 instructions on this CPU and no GPU")


@pytest.fixture
def bare_cpu(monkeypatch):
    """A machine without GPU and without reduced-precision instructions."""
    monkeypatch.setattr(runtime, "has_gpu", lambda: False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))


def test_precision_is_refused_without_hardware_support(bare_cpu, monkeypatch):
    assert runtime.check_precision("float32") == "float32"
    for precision, flag in (("bfloat16", "avx512_bf16"), ("float16", "avx512_fp16")):
        with pytest.raises(InputError, match=f"precision {precision}: .* no {precision} instructions.*float32"):
            runtime.check_precision(precision)
        monkeypatch.setattr(runtime, "cpu_flags", lambda flag=flag: frozenset({"avx2", flag}))
        assert runtime.check_precision(precision) == precision
        monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(runtime, "has_gpu", lambda: True)
    assert runtime.check_precision("float16") == "float16"
    with pytest.raises(InputError, match="expected one of float32, bfloat16, float16"):
        runtime.check_precision("int8")


def test_trainer_configs_refuse_unknown_precisions():
    for make in (lambda: GANConfig(precision="half"), lambda: UNetConfig(precision="half"),
                 lambda: cg.CycleGANConfig(precision="half")):
        with pytest.raises(InputError, match="precision 'half'"):
            make()


@pytest.fixture(scope="module")
def golden_float32(reference_dir, tmp_path_factory):
    """The README's InferenceDA command on the golden product with the published weights, in float32."""
    return _infer(reference_dir, tmp_path_factory.mktemp("f32"), "float32")


def _infer(reference_dir, folder, precision: str):
    weights = reference_dir / "weights"
    dest = folder / "adapted.HDF5"
    config = write_config(folder / "luigi.cfg")
    proc = luigi_cli("InferenceDA", "--local-scheduler", "--pvimage", reference_dir / GOLDEN, "--image-dest", dest,
                     "--cloud-detection-weights", weights / "cloud_detection_l8.hdf5",
                     "--dagans-weights", weights / "full.hdf5", "--precision", precision, config=config)
    return proc, dest


@needs_bf16
def test_inference_in_bfloat16_agrees_with_float32(reference_dir, golden_float32, tmp_path):
    proc32, dest32 = golden_float32
    assert_ok(proc32)
    proc, dest = _infer(reference_dir, tmp_path, "bfloat16")
    assert_ok(proc)
    with h5py.File(dest32, "r") as a, h5py.File(dest, "r") as b:
        cm32, cm = a["CM_PVDAGANS"][:], b["CM_PVDAGANS"][:]
    assert provenance.read_hdf5(dest)["parameters"]["precision"] == "bfloat16"
    assert ((cm32 < 0) == (cm < 0)).all()  # the invalid pixels do not depend on the arithmetic
    valid = cm32 >= 0
    agreement = ((cm32 >= 0.5) == (cm >= 0.5))[valid].mean()
    error = np.abs(cm32 - cm)[valid]
    assert agreement >= 0.995 and error.mean() <= 0.01, (agreement, error.mean())
    assert agreement < 1.0 or error.max() > 0  # it really ran in another arithmetic


def test_inference_refuses_float16_without_hardware(reference_dir, tmp_path):
    if runtime.cpu_flags() & set(runtime.CPU_FLAGS["float16"]) or runtime.has_gpu():
        pytest.skip("this machine runs float16")
    proc, dest = _infer(reference_dir, tmp_path, "float16")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not dest.exists()
    assert "precision float16" in output and "Use --precision float32" in output


@needs_bf16
def test_cyclegan_step_in_bfloat16_keeps_float32_weights():
    config = cg.CycleGANConfig(batch_size=4, precision="bfloat16")
    trainer = cg.CycleGANTrainer(config, lambda: cg.Networks(
        models.build_generator(8), models.build_generator(8), models.build_discriminator(4),
        models.build_discriminator(4), models.build_cloud_unet()))
    assert trainer.nets.gen_pv2lu.layers[2].compute_dtype == "bfloat16"
    before = [w.copy() for w in trainer.nets.gen_pv2lu.get_weights()]
    rng = np.random.default_rng(0)
    pv, lu = (tf.constant(rng.uniform(0, 0.6, (4, 32, 32, 4)).astype(np.float32)) for _ in range(2))
    losses = trainer.train_step(pv, lu)
    assert all(np.isfinite(float(v)) for v in losses.values())
    after = trainer.nets.gen_pv2lu.get_weights()
    assert all(w.dtype == np.float32 for w in after)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))
    assert keras.config.dtype_policy().name == "float32"  # the policy is set back after building


@needs_bf16
def test_fcd_trainers_step_in_bfloat16(tmp_path):
    from pvl8da.training import fcd_gan, fcd_unet

    gan = fcd_gan.FCDTrainer(GANConfig(width=8, n_res=1, d_width=8, d_layers=3, precision="bfloat16"),
                             tmp_path / "gan", 32)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 10)).astype(np.float32))
    c = tf.constant([[0.0], [1.0]])
    d_terms, g_terms = gan.d_step(x, c), gan.g_step(x, c)
    assert all(np.isfinite(float(v)) for v in [*d_terms.values(), *g_terms.values()])
    assert fcd_gan.cloud_map(gan.G, x).dtype == tf.float32
    model, opt = fcd_unet._model(UNetConfig(width=8, blocks=[1, 1, 1, 1], precision="bfloat16"))
    step = fcd_unet._train_step_fn(model, opt, 1.0)
    terms = step(x, tf.zeros((2, 32, 32, 1)), tf.ones((2, 32, 32, 1)), c)
    assert np.isfinite(float(terms["total"])) and all(w.dtype == np.float32 for w in model.get_weights())


@needs_bf16
def test_cloud_unet_fits_in_bfloat16():
    from pvl8da.training.cloud_unet import _compiled_model
    from pvl8da.training.configs import CloudTrainConfig

    model = _compiled_model(CloudTrainConfig(precision="bfloat16"), None)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.6, (4, 32, 32, 4)).astype(np.float32)
    y = (x[..., :1] > 0.3).astype(np.float32)
    before = model.get_weights()
    loss = model.train_on_batch(x, y, sample_weight=np.ones((4, 32, 32), np.float32))
    assert np.isfinite(np.asarray(loss)).all() and model.layers[1].compute_dtype == "bfloat16"
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert any(np.abs(a - b).max() > 0 for a, b in zip(model.get_weights(), before))


def test_inference_all_runs_its_products_in_the_precision_asked(tmp_path):
    from luigi.cmdline_parser import CmdlineParser

    import tasks  # noqa: F401  (the task families the command line names)

    for name in ("a", "b"):
        (tmp_path / f"PROBAV_L2A_{name}.HDF5").write_bytes(b"")
    args = ["InferenceAll", "--products", str(tmp_path / "*.HDF5"), "--dest", str(tmp_path / "out"),
            "--InferenceDA-precision", "bfloat16"]
    with CmdlineParser.global_instance(args) as parser:
        children = parser.get_task_obj().requires()
    assert len(children) == 2 and {child.precision for child in children} == {"bfloat16"}
