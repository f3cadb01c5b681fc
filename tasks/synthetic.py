"""GenerateSyntheticScene: synthetic Landsat-8 scenes and Proba-V products in the real formats."""
import datetime as dt
from pathlib import Path

import luigi

from pvl8da import synthetic


class GenerateSyntheticScene(luigi.Task):
    """Write a synthetic Landsat-8 scene folder (``--kind landsat8``) or Proba-V L2A product (``--kind probav``)."""

    dest = luigi.Parameter(default="synthetic")
    kind = luigi.ChoiceParameter(choices=["landsat8", "probav"], default="landsat8")
    rows = luigi.IntParameter(default=512)
    cols = luigi.IntParameter(default=512)
    seed = luigi.IntParameter(default=0)
    lat = luigi.FloatParameter(default=45.0)
    lon = luigi.FloatParameter(default=5.0)
    acquired = luigi.DateSecondParameter(default=None, description="UTC acquisition time (default 2016-05-20)")
    collection = luigi.ChoiceParameter(choices=[1, 2], var_type=int, default=1)
    biome = luigi.ChoiceParameter(choices=sorted(synthetic.BIOMES), default="GrassCrops")
    cloud_cover = luigi.FloatParameter(default=0.35)
    biome_mask = luigi.BoolParameter(default=False, description="write the Biome ENVI fixedmask")
    gt38 = luigi.BoolParameter(default=False, description="write the 38-Cloud ground-truth TIF")
    with_truth = luigi.BoolParameter(default=False, description="Proba-V: write the true cloud mask GeoTIFF")

    def _acquired(self) -> dt.datetime:
        if self.acquired is None:
            return synthetic.DEFAULT_LANDSAT_TIME if self.kind == "landsat8" else synthetic.DEFAULT_PROBAV_TIME
        return self.acquired.replace(tzinfo=dt.timezone.utc)

    def output(self):
        if self.kind == "landsat8":
            scene_id = synthetic.landsat8_scene_id(self.collection, self.seed, self._acquired())
            return luigi.LocalTarget(str(Path(self.dest) / scene_id))
        return luigi.LocalTarget(str(Path(self.dest) / synthetic.probav_product_name(self._acquired())))

    def run(self):
        common = dict(shape=(self.rows, self.cols), seed=self.seed, lat=self.lat, lon=self.lon,
                      acquired=self._acquired(), biome=self.biome, cloud_cover=self.cloud_cover)
        if self.kind == "landsat8":
            synthetic.write_landsat8_scene(self.dest, collection=self.collection,
                                           with_biome_mask=self.biome_mask, with_38cloud_gt=self.gt38, **common)
        else:
            synthetic.write_probav_product(self.dest, with_truth=self.with_truth, **common)
