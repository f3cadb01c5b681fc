"""Luigi tasks of FCD (SPEC §7): patches → Fixed-Point GAN → masks → FCD+ / FCD+1% / supervised → evaluation.

Every task shares ``root`` (Biome scenes ``<root>/<biome>/<scene ID>/``), ``out_dir`` and ``seed`` and
writes under ``<out_dir>/``; the defaults of the other parameters are the paper's settings.
TensorFlow-backed modules are imported inside ``run`` so that scheduling (and workers running only
light tasks such as ConvertPV) never loads TensorFlow.
"""
from __future__ import annotations

from pathlib import Path

import luigi

from pvl8da.storage.atomic import atomic_dir
from pvl8da.datasets.biome_patches import prepare_biome_patches
from pvl8da.synthetic import write_biome_dataset
from pvl8da.training.configs import KEEP_MODES, GANConfig, UNetConfig
from tasks.base import PRECISION_CHOICES, PRECISION_HELP, config_parameters, make_config

GAN, UNET = GANConfig, UNetConfig


class SyntheticBiome(luigi.Task):
    """Synthetic Biome-like scenes ``<root>/<biome>/<scene ID>/`` (for the small configuration and tests)."""

    root = luigi.Parameter()
    n_biomes = luigi.IntParameter(default=4)
    scenes_per_biome = luigi.IntParameter(default=4)
    size = luigi.IntParameter(default=384)
    seed = luigi.IntParameter(default=0)

    def output(self):
        return luigi.LocalTarget(self.root)

    def run(self):
        with atomic_dir(self.root) as tmp:
            write_biome_dataset(tmp, self.n_biomes, self.scenes_per_biome, (self.size, self.size), self.seed)


class _FCDTask(luigi.Task):
    resources = {"tensorflow": 1}
    root = luigi.Parameter(description="Biome-style scenes <root>/<biome>/<scene ID>/")
    out_dir = luigi.Parameter(default="fcd_output", description="folder of every FCD output")
    seed = luigi.IntParameter(default=0, description="split, sampling and initialisation seed")
    synthetic = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                    description="first write synthetic Biome-like scenes to root (SyntheticBiome)")
    data_seed = luigi.OptionalIntParameter(default=None, description="seed of the synthetic scenes (default: --seed)")

    def common(self) -> dict:
        return {"root": self.root, "out_dir": self.out_dir, "seed": self.seed, "synthetic": self.synthetic,
                "data_seed": self.data_seed}

    def path(self, *parts: str) -> Path:
        return Path(self.out_dir, *parts)


class PrepareBiomePatches(_FCDTask):
    """Split 6/2/4 per biome, cut 128-pixel patches into ``patches/{train,val,test}.h5``."""

    resources = {}

    patch_size = luigi.IntParameter(default=128)

    def requires(self):
        data_seed = self.seed if self.data_seed is None else self.data_seed
        return SyntheticBiome(root=self.root, seed=data_seed) if self.synthetic else []

    def output(self):
        return luigi.LocalTarget(self.path("patches"))

    def run(self):
        prepare_biome_patches(self.root, self.output().path, self.seed, self.patch_size)


@config_parameters(GAN, "iterations", "batch_size", "n_critic", "lr", "width", "n_res", "d_width", "identity_warmup",
                   "val_every", "checkpoint_every", "precision", choices=PRECISION_CHOICES, descriptions={
                       "identity_warmup": "generator steps fitting G(x, c) = x before the GAN (0: none, as the paper)",
                       **PRECISION_HELP})
class TrainFCD(_FCDTask):
    """The Fixed-Point GAN in ``fcd/`` (resumes from its last checkpoint after a kill)."""

    progress = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING)

    def requires(self):
        return PrepareBiomePatches(**self.common())

    def output(self):
        return luigi.LocalTarget(self.path("fcd", "done.json"))

    def run(self):
        from pvl8da.training.fcd_gan import train_fcd

        cfg = make_config(GANConfig, self, log_every=min(100, self.val_every))
        patches = Path(self.input().path)
        train_fcd(patches / "train.h5", patches / "val.h5", self.path("fcd"), cfg, self.progress)


class GenerateFCDMasks(_FCDTask):
    """Threshold by F1 on a labelled sample, pseudo masks of the training patches, whole-scene GeoTIFFs."""

    sample_patches = luigi.IntParameter(default=1000)
    tile = luigi.IntParameter(default=0, description="tile of the whole-scene prediction; 0: the patch size")

    def requires(self):
        return {"patches": PrepareBiomePatches(**self.common()), "fcd": TrainFCD(**self.common())}

    def output(self):
        return luigi.LocalTarget(self.path("fcd_masks"))

    def run(self):
        from pvl8da.inference.fcd_masks import generate_fcd_masks

        generate_fcd_masks(self.input()["patches"].path, Path(self.input()["fcd"].path).parent, self.output().path,
                           self.sample_patches, self.seed, tile=self.tile or None)


@config_parameters(UNET, "iterations", "batch_size", "lr", "val_every", "checkpoint_every", "precision",
                   choices=PRECISION_CHOICES, descriptions=PRECISION_HELP)
class _UNetTask(_FCDTask):
    progress = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING)
    folder = "unet"

    def output(self):
        return luigi.LocalTarget(self.path(self.folder, "done.json"))

    def config(self, **extra) -> UNetConfig:

        return make_config(UNetConfig, self, log_every=min(100, self.val_every), **extra)

    def train(self, cfg: UNetConfig, targets: str | Path | None = None) -> None:
        from pvl8da.training.fcd_unet import train_unet

        patches = self.path("patches")
        train_unet(patches / "train.h5", patches / "val.h5", self.path(self.folder), cfg, targets, self.progress)


@config_parameters(UNET, "width", "blocks")
class TrainFCDPlus(_UNetTask):
    """FCD+: the U-Net with a classification head trained on the FCD pseudo masks; its probability
    threshold is also calibrated on the labelled sample FCD's threshold came from."""

    folder = "fcd_plus"

    def requires(self):
        return {"patches": PrepareBiomePatches(**self.common()), "masks": GenerateFCDMasks(**self.common())}

    def run(self):
        from pvl8da.storage.atomic import load_json
        from pvl8da.inference.fcd_masks import PSEUDO, THRESHOLD

        masks = Path(self.input()["masks"].path)
        sample = load_json(masks / THRESHOLD)
        cfg = self.config(calibration_patches=sample["sample_patches"], calibration_seed=sample["seed"])
        self.train(cfg, masks / PSEUDO)


@config_parameters(UNET, keep_ratio=0.01, lr=1e-5, iterations=10_000, keep="pixels", freeze_encoder=True,
                   choices={"keep": KEEP_MODES}, descriptions={
                       "keep": "what --keep-ratio keeps of the real masks: a share of the patches, or of every "
                               "patch's pixels",
                       "freeze_encoder": "train the decoder and the heads only (the paper's fine-tune)"})
class FineTuneFCDPlus(_UNetTask):
    """FCD+1%: FCD+ fine-tuned on ``keep_ratio`` of the real masks (encoder frozen by default, as the paper). It has no
    ``--width``/``--blocks``: the network is FCD+'s, read from its ``config.json``."""

    folder = "fcd_plus_finetune"

    def requires(self):
        return TrainFCDPlus(**self.common())

    def run(self):
        from pvl8da.storage.atomic import load_json
        from pvl8da.training.fcd_unet import BEST as UNET_BEST

        plus = Path(self.input().path).parent
        plus_cfg = load_json(plus / "config.json")
        self.train(self.config(init_weights=str(plus / UNET_BEST), width=plus_cfg["width"],
                               blocks=plus_cfg["blocks"]))


@config_parameters(UNET, "width", "blocks")
class TrainSupervised(_UNetTask):
    """The same U-Net trained on 100 % of the real masks: the upper reference."""

    folder = "supervised"

    def requires(self):
        return PrepareBiomePatches(**self.common())

    def run(self):
        self.train(self.config())


class EvaluateBiome(_FCDTask):
    """Scores of FCD, FCD+, FCD+1%, supervised and the quality-band flag on the whole test scenes."""

    tile = luigi.IntParameter(default=1024)

    def requires(self):
        return {"patches": PrepareBiomePatches(**self.common()), "masks": GenerateFCDMasks(**self.common()),
                "FCD+": TrainFCDPlus(**self.common()), "FCD+1%": FineTuneFCDPlus(**self.common()),
                "Supervised": TrainSupervised(**self.common())}

    def output(self):
        return luigi.LocalTarget(self.path("evaluation"))

    def run(self):
        from pvl8da.evaluation.biome import evaluate_biome

        unets = {k: Path(self.input()[k].path).parent for k in ("FCD+", "FCD+1%", "Supervised")}
        evaluate_biome(self.input()["patches"].path, self.input()["masks"].path, unets, self.output().path,
                       self.tile)


class RunFCDPaper(luigi.WrapperTask):
    """The whole FCD chain with the paper's settings (override per task in a luigi config)."""

    root = luigi.Parameter(description="Biome-style scenes <root>/<biome>/<scene ID>/")
    out_dir = luigi.Parameter(default="fcd_output")
    seed = luigi.IntParameter(default=0)
    synthetic = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING)
    data_seed = luigi.OptionalIntParameter(default=None, description="seed of the synthetic scenes (default: --seed)")

    def requires(self):
        return EvaluateBiome(root=self.root, out_dir=self.out_dir, seed=self.seed, synthetic=self.synthetic,
                             data_seed=self.data_seed)
