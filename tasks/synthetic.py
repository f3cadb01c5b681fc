"""GenerateSyntheticScene: synthetic Landsat-8 scenes and Proba-V products in the real formats."""
import datetime as dt
from pathlib import Path

import luigi

from pvl8da import synthetic


class UTCDateSecondParameter(luigi.DateSecondParameter):
    """A UTC time to the second, as ISO 8601 (``2016-05-20T10:15:00``, ``2016-05-20 10:15``, ``…Z``,
    ``…+02:00``) or Luigi's own ``2016-05-20T101500``; parsed to a naive datetime in UTC."""

    def parse(self, s):
        try:
            when = dt.datetime.fromisoformat(s)
        except ValueError:
            try:
                return super().parse(s)
            except ValueError:
                raise ValueError(f"not a date and time: {s!r} (expected e.g. 2016-05-20T10:15:00)") from None
        if when.tzinfo is not None:
            when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return when


class GenerateSyntheticScene(luigi.Task):
    """Write a synthetic Landsat-8 scene folder (``--kind landsat8``) or Proba-V L2A product (``--kind probav``)."""

    dest = luigi.Parameter(default="synthetic")
    kind = luigi.ChoiceParameter(choices=["landsat8", "probav"], default="landsat8")
    rows = luigi.IntParameter(default=512)
    cols = luigi.IntParameter(default=512)
    seed = luigi.IntParameter(default=0)
    lat = luigi.FloatParameter(default=45.0)
    lon = luigi.FloatParameter(default=5.0)
    acquired = UTCDateSecondParameter(default=None, description="UTC acquisition time, e.g. 2016-05-20T10:15:00 "
                                                                "(default 2016-05-20, 10:30 Landsat, 10:15 Proba-V)")
    collection = luigi.ChoiceParameter(choices=[0, 1, 2], var_type=int, default=1,
                                       description="0 pre-collection (the Biome generation), 1 or 2")
    satellite = luigi.ChoiceParameter(choices=[8, 9], var_type=int, default=8,
                                      description="9: a Landsat 9 scene (Collection 2 only)")
    biome = luigi.ChoiceParameter(choices=sorted(synthetic.BIOMES), default="GrassCrops")
    cloud_cover = luigi.FloatParameter(default=0.35)
    biome_mask = luigi.BoolParameter(default=False, description="write the Biome ENVI fixedmask")
    gt38 = luigi.BoolParameter(default=False, description="write the 38-Cloud ground-truth TIF")
    with_truth = luigi.BoolParameter(default=False, description="Proba-V: write the true cloud mask GeoTIFF")

    def _acquired(self) -> dt.datetime:
        default = synthetic.DEFAULT_LANDSAT_TIME if self.kind == "landsat8" else synthetic.DEFAULT_PROBAV_TIME
        return default if self.acquired is None else self.acquired.replace(tzinfo=dt.timezone.utc)

    def output(self):
        when = self._acquired()
        name = (synthetic.landsat8_scene_id(self.collection, self.seed, when, self.satellite)
                if self.kind == "landsat8" else synthetic.probav_product_name(when))
        return luigi.LocalTarget(str(Path(self.dest) / name))

    def run(self):
        common = dict(shape=(self.rows, self.cols), seed=self.seed, lat=self.lat, lon=self.lon,
                      acquired=self._acquired(), biome=self.biome, cloud_cover=self.cloud_cover)
        if self.kind == "landsat8":
            synthetic.write_landsat8_scene(self.dest, collection=self.collection, satellite=self.satellite,
                                           with_biome_mask=self.biome_mask, with_38cloud_gt=self.gt38, **common)
        else:
            synthetic.write_probav_product(self.dest, with_truth=self.with_truth, **common)
