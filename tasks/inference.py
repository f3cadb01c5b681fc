"""InferenceDA (Proba-V → adapted bands + cloud mask) and InferenceClouds (Landsat-as-Proba-V), SPEC §6."""
from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility

from pvl8da.errors import InputError
from pvl8da.inference import cog_path, infer_clouds, infer_da
from pvl8da.published import BASE_URL_ENV, PUBLISHED, is_published

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


class InferenceDA(luigi.Task):
    """Adapt ``--pvimage`` to the Landsat-8 domain and detect clouds: ``--image-dest`` (a copy with the
    adapted TOA bands and CM_PVDAGANS), ``<dest stem>_clouds.tif`` and ``<dest stem>_quicklook.png``."""

    resources = {"tensorflow": 1}
    pvimage = luigi.Parameter(description="Proba-V L2A product (HDF5)")
    image_dest = luigi.Parameter(description="output product (HDF5), in an existing folder")
    cloud_detection_weights = luigi.Parameter(default=CLOUD_WEIGHTS, description=f"weights file, or {PUBLISHED}")
    dagans_weights = luigi.Parameter(default=DAGANS_WEIGHTS, description=f"weights file, or {PUBLISHED}")
    no_adaptation = luigi.BoolParameter(default=False, description="cloud model on the raw bands (CM_UNET)")
    weights_base_url = weights_base_url_parameter()

    def output(self):
        return {"product": luigi.LocalTarget(self.image_dest),
                "clouds": luigi.LocalTarget(str(cog_path(self.image_dest)))}

    def run(self):
        weights = {"cloud_detection_weights": self.cloud_detection_weights}
        if not self.no_adaptation:
            weights["dagans_weights"] = self.dagans_weights
        require_weights(**weights)
        infer_da(self.pvimage, self.image_dest, self.cloud_detection_weights, self.dagans_weights,
                 adaptation=not self.no_adaptation, weights_base_url=self.weights_base_url)


class InferenceClouds(luigi.Task):
    """Cloud model on a Landsat-as-Proba-V product ``--image``: ``--image-dest`` (a copy with CM_UNET)
    and ``<dest stem>_clouds.tif``."""

    resources = {"tensorflow": 1}
    image = luigi.Parameter(description="Landsat-as-Proba-V product (HDF5, from ConvertPV)")
    image_dest = luigi.Parameter(description="output product (HDF5), in an existing folder")
    cloud_detection_weights = luigi.Parameter(default=CLOUD_WEIGHTS, description=f"weights file, or {PUBLISHED}")
    weights_base_url = weights_base_url_parameter()

    def output(self):
        return {"product": luigi.LocalTarget(self.image_dest),
                "clouds": luigi.LocalTarget(str(cog_path(self.image_dest)))}

    def run(self):
        require_weights(cloud_detection_weights=self.cloud_detection_weights)
        infer_clouds(self.image, self.image_dest, self.cloud_detection_weights, weights_base_url=self.weights_base_url)
