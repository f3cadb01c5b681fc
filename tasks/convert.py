"""ConvertPV: a Landsat-8 scene folder -> a Proba-V look-alike HDF5 product (SPEC §2)."""
from pathlib import Path

import luigi

from pvl8da.conversion import RESOLUTION_STEPS, conversion_outputs, convert_scene, output_name
from pvl8da.sensors.landsat8 import TYPE_PRODUCTS, open_scene, scene_id_of
from tasks.base import PVL8DATask
from tasks.download import DownloadLandsat8


class ConvertPV(PVL8DATask):
    """Convert ``--l8img`` into ``<outfolder>/<scene ID>_<resolution>.HDF5`` (and an optional quicklook PNG)."""

    l8img = luigi.Parameter(description="Landsat-8 L1 scene folder (named after its scene ID)")
    outfolder = luigi.Parameter(default="landsataspv")
    resolution = luigi.ChoiceParameter(choices=list(RESOLUTION_STEPS), default="333M")
    type_product = luigi.ChoiceParameter(choices=list(TYPE_PRODUCTS), default="landsat8")
    quicklook = luigi.BoolParameter(default=False, description="also write <product>.png")
    # Not "workers": a root task's parameters become plain options (--name) beside Luigi's own, and
    # Luigi already has --workers (worker processes); tests/test_cli.py checks every task for such clashes.
    threads = luigi.IntParameter(default=2, significant=False, description="threads used by the conversion")
    download = luigi.ChoiceParameter(choices=["none", "biome", "stac"], default="none", significant=False,
                                     description="fetch --l8img (a folder named after its scene ID) from this "
                                                 "source when it is not on disk")

    def requires(self):
        if self.download == "none":
            return []
        scene = Path(self.l8img)
        return DownloadLandsat8(scene_id=scene.name, dest=str(scene.parent), source=self.download)

    def output(self):
        product = Path(self.outfolder) / output_name(scene_id_of(self.l8img), self.resolution)
        return {name: luigi.LocalTarget(str(path))
                for name, path in zip(("product", "quicklook"), conversion_outputs(product, self.quicklook))}

    def check_inputs(self) -> None:
        if self.download == "none" or Path(self.l8img).is_dir():
            open_scene(self.l8img, self.type_product)

    def provenance_files(self) -> dict[str, Path]:
        """The MTL (product ID, processing date, calibration) and, for labelled scenes, the labels."""
        if not Path(self.l8img).is_dir():
            return {}
        scene = open_scene(self.l8img, self.type_product)
        return {"mtl": Path(scene.mtl.source), **{path.name: path for path in scene.label_paths()}}

    def run(self):
        convert_scene(self.l8img, self.outfolder, self.resolution, self.type_product, workers=self.threads,
                      record=self.provenance_record(), quicklook=self.quicklook)
