"""Training chain (SPEC §5): pseudo-simultaneous pairs -> cloud U-Net -> CycleGAN (+ ablations) -> EvaluateDA.

    python -m luigi --module tasks TrainCycleGAN --dataset-folder data/ --suffix full --folder models/ --local-scheduler
    python -m luigi --module tasks TrainDefaultModels --local-scheduler

Pair lists are CSV files ``pvimage,l8img,type_product``; their Landsat scenes are converted with
ConvertPV as dynamic dependencies. The TensorFlow trainers are imported in ``run`` so that scheduling
(and workers running only light tasks such as ConvertPV) never loads TensorFlow.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import luigi

from pvl8da.training import cyclegan_config
from pvl8da.training.configs import CloudTrainConfig

from pvl8da.datasets import pairs
from pvl8da.evaluation.da import EvalItem, evaluate_da
from pvl8da.errors import InputError
from pvl8da.storage.published import PUBLISHED, resolve_weights
from pvl8da.models.weights import install_weights
from tasks.convert import ConvertPV
from tasks.base import PRECISION_CHOICES, PRECISION_HELP, PVL8DATask, config_parameters, make_config
from tasks.inference import require_weights, weights_base_url_parameter, weights_file

CYCLEGAN, CLOUD_UNET = cyclegan_config.CycleGANConfig, CloudTrainConfig
STEPS_HELP = {"steps_per_epoch": "cap on steps per epoch (tests, demos)"}
SELECTION_HELP = {
    "val_scenes": "pairs held out to select the epoch without Proba-V labels (0: keep the last epoch)",
    "ema_decay": "exponential moving average of the PV -> LU generator's weights (0: off)",
    "lr_schedule": "constant, or linear: decayed over the second half of the epochs",
}
ABLATIONS = {
    "full": {},
    "noidentity": {"identity_lambda": 0.0},
    "nosegmentation": {"segmentation_consistency_lmbda": 0.0},
    "noidentity_nosegmentation": {"identity_lambda": 0.0, "segmentation_consistency_lmbda": 0.0},
    "nosegmentation_nocycle": {"segmentation_consistency_lmbda": 0.0, "cycled_lambda": 0.0},
}


class AblationsParameter(luigi.ListParameter):
    """A JSON list of names of ABLATIONS; another name is refused as soon as it is given, before any work."""

    def normalize(self, x):
        unknown = sorted(set(x) - set(ABLATIONS)) if isinstance(x, (list, tuple)) else [x]
        if unknown:
            raise InputError(f"unknown ablations {unknown}; choose from {list(ABLATIONS)}")
        return super().normalize(x)


def _pairs(pairs_csv: str | None, pv_folder: str | None, l8_folder: str | None, window_hours: float,
           type_product: str) -> list[pairs.Pair]:
    if pairs_csv:
        return pairs.read_pairs_csv(pairs_csv)
    if pv_folder and l8_folder:
        return pairs.discover_pairs(pv_folder, l8_folder, dt.timedelta(hours=window_hours), type_product)
    raise InputError("give --pairs-csv, or --pv-folder and --l8-folder")


def _convert(task: luigi.Task, scenes: list[tuple[Path, str]]):
    """Dynamic ConvertPV dependencies; returns their product paths."""
    targets = yield [ConvertPV(l8img=str(scene), outfolder=task.landsataspv_folder, resolution=task.resolution,
                               type_product=kind) for scene, kind in scenes]
    return [Path(t["product"].path) for t in targets]


def pair_items(task: luigi.Task, pairs_csv: str):
    """Dynamic ConvertPV dependencies of a pairs CSV's Landsat scenes; returns EvaluateDA's items (each Proba-V
    product with its Landsat-as-Proba-V reference)."""
    found = pairs.read_pairs_csv(pairs_csv)
    products = yield from _convert(task, [(p.l8img, p.type_product) for p in found])
    return [EvalItem(p.pvimage, lu) for p, lu in zip(found, products)]


class BuildPseudoSimultaneousDataset(luigi.Task):
    """Co-registered 64-px patches (stride 32) of Proba-V / Landsat-as-Proba-V pairs ->
    ``<dataset-folder>/simultaneous_landsatbiomeaspv_64_32.hdf5``."""

    pairs_csv = luigi.OptionalParameter(default=None, description="CSV pvimage,l8img,type_product")
    pv_folder = luigi.OptionalParameter(default=None, description="Proba-V products to match (with --l8-folder)")
    l8_folder = luigi.OptionalParameter(default=None, description="Landsat-8 scene folders to match")
    type_product = luigi.ChoiceParameter(choices=list(pairs.TYPE_PRODUCTS), default="biome")
    dataset_folder = luigi.Parameter(default="datasets")
    landsataspv_folder = luigi.Parameter(default="landsataspv")
    resolution = luigi.ChoiceParameter(choices=["333M", "100M", "1KM"], default="333M")
    window_hours = luigi.FloatParameter(default=2.0)
    patch_size = luigi.IntParameter(default=64)
    stride = luigi.IntParameter(default=32)

    def output(self):
        return luigi.LocalTarget(str(Path(self.dataset_folder) / pairs.dataset_name(self.patch_size, self.stride)))

    def run(self):
        found = _pairs(self.pairs_csv, self.pv_folder, self.l8_folder, self.window_hours, self.type_product)
        products = yield from _convert(self, [(p.l8img, p.type_product) for p in found])
        pairs.build_dataset(found, products, self.output().path, dt.timedelta(hours=self.window_hours),
                            self.patch_size, self.stride)


@config_parameters(CLOUD_UNET, "epochs", "batch_size", "lr", "seed", "val_fraction", "steps_per_epoch", "precision",
                   choices=PRECISION_CHOICES, descriptions={**STEPS_HELP, **PRECISION_HELP})
class TrainCloudDetector(luigi.Task):
    """The cloud U-Net on Landsat-as-Proba-V products of labelled scenes -> ``<folder>/<name>.weights.h5``."""

    resources = {"tensorflow": 1}

    pairs_csv = luigi.OptionalParameter(default=None, description="CSV whose l8img scenes are used")
    l8_folder = luigi.OptionalParameter(default=None, description="folder searched for labelled scene folders")
    type_product = luigi.ChoiceParameter(choices=["biome", "38c"], default="biome")
    landsataspv_folder = luigi.Parameter(default="landsataspv")
    resolution = luigi.ChoiceParameter(choices=["333M", "100M", "1KM"], default="333M")
    folder = luigi.Parameter(default="models")
    name = luigi.Parameter(default="cloud_detection")

    def output(self):
        return luigi.LocalTarget(str(Path(self.folder) / f"{self.name}.weights.h5"))

    def _scenes(self) -> list[tuple[Path, str]]:
        if self.pairs_csv:
            return list(dict.fromkeys((p.l8img, p.type_product) for p in pairs.read_pairs_csv(self.pairs_csv)))
        if self.l8_folder:
            scenes = sorted({m.parent for m in Path(self.l8_folder).rglob("*_MTL.txt")})
            if scenes:
                return [(s, self.type_product) for s in scenes]
            raise InputError(f"{self.l8_folder}: no Landsat-8 scene folder (with an MTL file) found")
        raise InputError("give --pairs-csv or --l8-folder")

    def run(self):
        from pvl8da.training.cloud_unet import train_cloud_detector

        products = yield from _convert(self, self._scenes())
        train_cloud_detector(products, self.output().path, make_config(CloudTrainConfig, self))


class _CycleGANInputs:
    """Where TrainCycleGAN and TrainAllCycleGAN read and write, and the frozen cloud model."""

    folder = luigi.Parameter(default="models", description="where models, checkpoints and logs go")
    dataset_folder = luigi.Parameter(default="datasets", description="holds simultaneous_landsatbiomeaspv_64_32.hdf5")
    pairs_csv = luigi.OptionalParameter(default=None, description="build the dataset from these pairs first")
    landsataspv_folder = luigi.Parameter(default="landsataspv")
    weights_cloud_detection = luigi.Parameter(default="checkpoints/cloud_detection.weights.h5",
                                              description=f"frozen cloud model: weights file, or {PUBLISHED}")
    weights_base_url = weights_base_url_parameter()


@config_parameters(CYCLEGAN, "gradient_penalty_weight", "df_gen", "df_disc", "epochs", "seed", "batch_size", "lr",
                   "identity_lambda", "cycled_lambda", "segmentation_consistency_lmbda", "suffix", "steps_per_epoch",
                   "gradient_penalty_mode", "normtype", "val_scenes", "ema_decay", "lr_schedule", "precision",
                   descriptions={**STEPS_HELP, **SELECTION_HELP, **PRECISION_HELP},
                   choices={"gradient_penalty_mode": cyclegan_config.GP_MODES, "normtype": cyclegan_config.NORMTYPES,
                            "lr_schedule": cyclegan_config.LR_SCHEDULES, **PRECISION_CHOICES})
class TrainCycleGAN(_CycleGANInputs, PVL8DATask):
    """CycleGAN Proba-V <-> Landsat-as-Proba-V with the original parameters; the PV -> LU generator is
    ``<folder>/genpv2l8cycle_<df_gen>_<df_disc>_<suffix>.weights.h5``. Resumes after a kill."""

    resources = {"tensorflow": 1}

    def requires(self):
        return BuildPseudoSimultaneousDataset(pairs_csv=self.pairs_csv, dataset_folder=self.dataset_folder,
                                              landsataspv_folder=self.landsataspv_folder) if self.pairs_csv else []

    def config(self) -> cyclegan_config.CycleGANConfig:
        return make_config(cyclegan_config.CycleGANConfig, self)

    def output(self):
        return luigi.LocalTarget(str(cyclegan_config.output_paths(self.folder, self.config())["generator"]))

    def dataset(self) -> Path:
        """The pairs' dataset: the requirement's output (any patch size), else the default name in --dataset-folder."""
        return Path(self.input().path) if self.pairs_csv else Path(self.dataset_folder) / pairs.DATASET_NAME

    def check_inputs(self) -> None:
        require_weights(weights_cloud_detection=self.weights_cloud_detection)
        if not self.pairs_csv and not self.dataset().is_file():
            raise InputError(f"{self.dataset()}: pseudo-simultaneous dataset not found (build it with "
                             "BuildPseudoSimultaneousDataset, or pass --pairs-csv)")

    def provenance_files(self) -> dict[str, str]:
        return {"dataset": str(self.dataset()),
                "weights_cloud_detection": weights_file(self.weights_cloud_detection, "cloud_detection")}

    def recorded_provenance(self) -> dict | None:
        return cyclegan_config.recorded_provenance(self.folder, self.config())

    def run(self):
        from pvl8da.training.cyclegan import train_cyclegan

        self.check_inputs()
        cloud = resolve_weights(self.weights_cloud_detection, "cloud_detection", base_url=self.weights_base_url)
        train_cyclegan(self.dataset(), self.folder, self.config(), cloud, record=self.provenance_record(),
                       overwrite=self.overwrite)


@config_parameters(CYCLEGAN, "epochs", "batch_size", "lr", "seed", "steps_per_epoch", "val_scenes", "ema_decay",
                   "lr_schedule", descriptions={**STEPS_HELP, **SELECTION_HELP},
                   choices={"lr_schedule": cyclegan_config.LR_SCHEDULES})
class TrainAllCycleGAN(_CycleGANInputs, luigi.WrapperTask):
    """The full model and the paper's ablations (identity 0; segmentation 0; both 0; segmentation and cycle 0)."""

    ablations = AblationsParameter(default=list(ABLATIONS))

    def requires(self):
        common = {name: value for name, value in self.param_kwargs.items() if name != "ablations"}
        return {name: TrainCycleGAN(suffix=name, **common, **ABLATIONS[name]) for name in self.ablations}


class EvaluateDA(luigi.Task):
    """Scores of the SM mask, the U-Net without adaptation and with each generator, per product and overall
    -> ``<out-folder>/evaluation.{csv,md,png}``. References: the pairs' labelled Landsat scenes
    (``--pairs-csv``) or GeoTIFF masks ``<product stem><mask-suffix>`` beside the products (``--pv-folder``)."""

    pairs_csv = luigi.OptionalParameter(default=None)
    pv_folder = luigi.OptionalParameter(default=None)
    mask_suffix = luigi.Parameter(default="_truth.tif")
    landsataspv_folder = luigi.Parameter(default="landsataspv")
    resolution = luigi.ChoiceParameter(choices=["333M", "100M", "1KM"], default="333M")
    weights_cloud_detection = luigi.Parameter(default="checkpoints/cloud_detection.weights.h5",
                                              description=f"weights file, or {PUBLISHED}")
    dagans = luigi.DictParameter(default={"DA": "checkpoints/dagans_pv2l8.weights.h5"},
                                 description=f'JSON {{"name": "generator.weights.h5" or "{PUBLISHED}", ...}}')
    weights_base_url = weights_base_url_parameter()
    out_folder = luigi.Parameter(default="evaluation")
    resources = {"tensorflow": 1}

    def output(self):
        return luigi.LocalTarget(str(Path(self.out_folder) / "evaluation.csv"))

    def run(self):
        if self.pairs_csv:
            items = yield from pair_items(self, self.pairs_csv)
        elif self.pv_folder:
            items = [EvalItem(p, p.with_name(p.stem + self.mask_suffix))
                     for p in sorted(Path(self.pv_folder).glob("PROBAV_L2A_*.HDF5"))]
        else:
            raise InputError("give --pairs-csv or --pv-folder")
        evaluate_da(items, self.weights_cloud_detection, dict(self.dagans), self.out_folder, self.weights_base_url)


class GenerateSyntheticPairs(luigi.Task):
    """Synthetic labelled Landsat-8 scenes and Proba-V products (simulated radiometric difference) -> ``<dest>/<name>.csv``."""

    dest = luigi.Parameter(default="synthetic_pairs")
    name = luigi.Parameter(default="pairs")
    n_pairs = luigi.IntParameter(default=4)
    seed = luigi.IntParameter(default=0)
    l8_size = luigi.IntParameter(default=1536)

    def output(self):
        return luigi.LocalTarget(str(Path(self.dest) / f"{self.name}.csv"))

    def run(self):
        pairs.write_synthetic_pairs(self.dest, self.n_pairs, self.seed, (self.l8_size, self.l8_size), name=self.name)


class SyntheticDAChain:
    """Parameters and steps shared by TrainDefaultModels and RunDASeeds: synthetic training pairs (seed 0) and
    test pairs (``--test-seed``), the cloud U-Net, and CycleGANs named ``<configuration>_s<seed>``."""

    work_dir = luigi.Parameter(default="default_models")
    n_train_pairs = luigi.IntParameter(default=8)
    n_test_pairs = luigi.IntParameter(default=3)
    test_seed = luigi.IntParameter(default=11, description="seed of the synthetic test pairs (never trained, "
                                   "selected or tuned on)")
    l8_size = luigi.IntParameter(default=4096)
    cloud_epochs = luigi.IntParameter(default=15)
    cloud_steps = luigi.IntParameter(default=20)
    cloud_seed = luigi.IntParameter(default=123)
    gan_epochs = luigi.IntParameter(default=8)
    gan_steps = luigi.OptionalIntParameter(default=None)
    gan_batch_size = luigi.IntParameter(default=16)
    gan_lr = luigi.FloatParameter(default=2e-4)
    gan_gp_weight = luigi.FloatParameter(default=0.0, description="R1 weight (0: no penalty; the paper's 10 and "
                                         "1 held the adaptation back on validation pairs, README)")
    gan_df_disc = luigi.IntParameter(default=16, description="discriminator width (16 adapted further than the "
                                     "paper's 8 on validation pairs, README)")
    gan_ema_decay = luigi.FloatParameter(default=0.98)
    gan_lr_schedule = luigi.ChoiceParameter(choices=cyclegan_config.LR_SCHEDULES, default="linear")
    gan_seg_lambda = luigi.FloatParameter(default=0.1, description="segmentation-consistency weight of the "
                                          "configurations that keep the term (the paper's 1 held the adaptation "
                                          "back on validation pairs, README)")
    gan_val_scenes = luigi.IntParameter(default=1)

    resolution = "333M"

    @property
    def landsataspv_folder(self) -> str:
        """Where the chain's Landsat scenes are converted (ConvertPV, as EvaluateDA's references)."""
        return str(Path(self.work_dir) / "landsataspv")


def chain_pairs(chain: SyntheticDAChain) -> list[GenerateSyntheticPairs]:
    """The chain's synthetic training (seed 0) and test (``test_seed``) pairs."""
    work = Path(chain.work_dir)
    return [GenerateSyntheticPairs(dest=str(work / folder), name=name, n_pairs=n, seed=seed, l8_size=chain.l8_size)
            for folder, name, n, seed in (("synthetic", "train", chain.n_train_pairs, 0),
                                          (f"synthetic_test{chain.test_seed}", "test", chain.n_test_pairs,
                                           chain.test_seed))]


def chain_cloud(chain: SyntheticDAChain, train_csv: str) -> TrainCloudDetector:
    """The chain's cloud U-Net, trained on the training pairs' Landsat scenes."""
    return TrainCloudDetector(pairs_csv=train_csv, folder=str(Path(chain.work_dir) / "models"),
                              epochs=chain.cloud_epochs, steps_per_epoch=chain.cloud_steps, seed=chain.cloud_seed,
                              landsataspv_folder=chain.landsataspv_folder)


def chain_gan(chain: SyntheticDAChain, name: str, seed: int, train_csv: str, cloud: str) -> TrainCycleGAN:
    """The CycleGAN of configuration ``name`` (:data:`ABLATIONS`) and ``seed``, suffix ``<name>_s<seed>``."""
    work = Path(chain.work_dir)
    return TrainCycleGAN(
        suffix=f"{name}_s{seed}", seed=seed, folder=str(work / "models"), dataset_folder=str(work / "datasets"),
        pairs_csv=train_csv, weights_cloud_detection=cloud, epochs=chain.gan_epochs, batch_size=chain.gan_batch_size,
        lr=chain.gan_lr, gradient_penalty_weight=chain.gan_gp_weight, df_disc=chain.gan_df_disc,
        gradient_penalty_mode="meschederreal" if chain.gan_gp_weight else "none", steps_per_epoch=chain.gan_steps,
        ema_decay=chain.gan_ema_decay, lr_schedule=chain.gan_lr_schedule, val_scenes=chain.gan_val_scenes,
        landsataspv_folder=chain.landsataspv_folder,
        **{"segmentation_consistency_lmbda": chain.gan_seg_lambda, **ABLATIONS[name]})


class TrainDefaultModels(SyntheticDAChain, luigi.Task):
    """The project's own ``checkpoints/``: the whole chain on synthetic pairs, then EvaluateDA of the test pairs
    (and of the ablations listed in ``--ablations``).

    The checkpoints are trained on synthetic scenes only: for real Proba-V data use the published
    weights (InferenceDA ``--cloud-detection-weights published --dagans-weights published``)."""

    checkpoints = luigi.Parameter(default="checkpoints")
    ablations = AblationsParameter(default=[], description=f"also train these of {list(ABLATIONS)[1:]}")
    seed = luigi.IntParameter(default=1, description="seed of the CycleGANs")

    def output(self):
        return {"cloud": luigi.LocalTarget(str(Path(self.checkpoints) / "cloud_detection.weights.h5")),
                "dagans": luigi.LocalTarget(str(Path(self.checkpoints) / "dagans_pv2l8.weights.h5"))}

    def run(self):
        work = Path(self.work_dir)
        train_csv, test_csv = yield chain_pairs(self)
        cloud = yield chain_cloud(self, train_csv.path)
        names = ["full", *(a for a in self.ablations if a != "full")]
        gans = yield {name: chain_gan(self, name, self.seed, train_csv.path, cloud.path) for name in names}
        yield EvaluateDA(pairs_csv=test_csv.path, weights_cloud_detection=cloud.path,
                         out_folder=str(work / "evaluation"), dagans={n: t.path for n, t in gans.items()},
                         landsataspv_folder=self.landsataspv_folder)
        install_weights({self.output()["cloud"].path: cloud.path, self.output()["dagans"].path: gans["full"].path})
