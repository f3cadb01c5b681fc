"""InferenceDA (Proba-V → adapted bands + cloud mask) and InferenceClouds (Landsat-as-Proba-V), SPEC §6."""
from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility

from pvl8da.runtime import PRECISIONS, check_precision
from pvl8da.storage import provenance
from pvl8da.errors import InputError
from pvl8da.inference.products import check_paths, infer_clouds, infer_da, infer_outputs
from pvl8da.sensors.probav import LandsatAsProbaVProduct, ProbaVProduct
from pvl8da.storage.published import BASE_URL_ENV, MANIFEST, PUBLISHED, is_published
from tasks.base import Folder, PVL8DATask

CLOUD_WEIGHTS = "checkpoints/cloud_detection.weights.h5"
DAGANS_WEIGHTS = "checkpoints/dagans_pv2l8.weights.h5"


def weights_base_url_parameter() -> luigi.OptionalParameter:
    """``--weights-base-url``: where ``published`` weights are fetched from; it may carry credentials, so it is
    left out of the task ID, its repr and the scheduler."""
    return luigi.OptionalParameter(
        default=None, significant=False, visibility=ParameterVisibility.PRIVATE,
        description=f"base URL of the published weights files (default: ${BASE_URL_ENV}, else the paper's repository)")


def require_weights(**options: str) -> None:
    """Fail, naming the missing file and the option to pass, when a weights file (not ``published``) does not exist."""
    for option, path in options.items():
        flag = "--" + option.replace("_", "-")
        if not is_published(path) and not Path(path).is_file():
            raise InputError(
                f"weights file {path} not found: train the project's own checkpoints (TrainDefaultModels) or "
                f"pass {flag} PATH, or {flag} {PUBLISHED} for the paper's weights (downloaded once into your cache)")


def weights_file(value: str, kind: str) -> str:
    """A weights parameter as a provenance file: the path, or the published file's known digest."""
    return f"{provenance.DIGEST_PREFIX}{MANIFEST[kind].sha256}" if is_published(value) else value


class _Inference(PVL8DATask):
    """What both inference tasks share: destination, cloud-model weights, outputs and their provenance."""

    resources = {"tensorflow": 1}
    product_class = ProbaVProduct
    image_dest = luigi.Parameter(description="output product (HDF5), in an existing folder")
    cloud_detection_weights = luigi.Parameter(default=CLOUD_WEIGHTS, description=f"weights file, or {PUBLISHED}")
    weights_base_url = weights_base_url_parameter()
    precision = luigi.ChoiceParameter(choices=PRECISIONS, default="float32",
                                      description="the networks' arithmetic: bfloat16 or float16 where the hardware "
                                                  "has it (refused elsewhere); float32 is the reference")

    @property
    def source(self) -> str:
        raise NotImplementedError

    def weights(self) -> dict[str, str]:
        """Weights options in use, by parameter name."""
        return {"cloud_detection_weights": self.cloud_detection_weights}

    def output(self):
        outputs = infer_outputs(self.image_dest, quicklook=self.product_class is ProbaVProduct)
        return {name: luigi.LocalTarget(str(path)) for name, path in zip(("product", "clouds", "quicklook"),
                                                                          outputs.paths())}

    make_folder = luigi.BoolParameter(default=False, significant=False,
                                      description="create --image-dest's folder first (a Folder requirement)")

    def requires(self):
        return Folder(path=str(Path(self.image_dest).parent)) if self.make_folder else []

    def check_inputs(self) -> None:
        require_weights(**self.weights())
        check_precision(self.precision)
        if not self.make_folder or Path(self.image_dest).parent.is_dir():  # else the Folder requirement makes it
            check_paths(self.source, self.image_dest)
        self.product_class(self.source).close()

    def provenance_files(self) -> dict[str, str]:
        kinds = {"cloud_detection_weights": "cloud_detection", "dagans_weights": "dagans"}
        return {"input": self.source, **{name: weights_file(value, kinds[name]) for name, value in self.weights().items()}}


class InferenceDA(_Inference):
    """Adapt ``--pvimage`` to the Landsat-8 domain and detect clouds: ``--image-dest`` (a copy with the
    adapted TOA bands and CM_PVDAGANS), ``<dest stem>_clouds.tif`` and ``<dest stem>_quicklook.png``."""

    pvimage = luigi.Parameter(description="Proba-V L2A product (HDF5)")
    dagans_weights = luigi.Parameter(default=DAGANS_WEIGHTS, description=f"weights file, or {PUBLISHED}")
    no_adaptation = luigi.BoolParameter(default=False, description="cloud model on the raw bands (CM_UNET)")

    @property
    def source(self) -> str:
        return self.pvimage

    def weights(self) -> dict[str, str]:
        return super().weights() if self.no_adaptation else {**super().weights(), "dagans_weights": self.dagans_weights}

    def run(self):
        self.check_inputs()
        infer_da(self.pvimage, self.image_dest, self.cloud_detection_weights, self.dagans_weights,
                 adaptation=not self.no_adaptation, weights_base_url=self.weights_base_url, precision=self.precision,
                 record=self.provenance_record())


class InferenceClouds(_Inference):
    """Cloud model on a Landsat-as-Proba-V product ``--image``: ``--image-dest`` (a copy with CM_UNET)
    and ``<dest stem>_clouds.tif``."""

    product_class = LandsatAsProbaVProduct
    image = luigi.Parameter(description="Landsat-as-Proba-V product (HDF5, from ConvertPV)")

    @property
    def source(self) -> str:
        return self.image

    def run(self):
        self.check_inputs()
        infer_clouds(self.image, self.image_dest, self.cloud_detection_weights, weights_base_url=self.weights_base_url,
                     precision=self.precision, record=self.provenance_record())
