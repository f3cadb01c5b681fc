"""Demo: the main pipeline end to end on an embedded synthetic default (``make demo``)."""
from pathlib import Path

import luigi

from tasks.convert import ConvertPV
from tasks.synthetic import GenerateSyntheticScene


class Demo(luigi.Task):
    """Generate a synthetic Biome scene, convert it to Proba-V 333M with a quicklook, and list the outputs."""

    out = luigi.Parameter(default="demo_output")

    def requires(self):
        return GenerateSyntheticScene(dest=str(Path(self.out) / "landsat8"), kind="landsat8", rows=768, cols=768,
                                      seed=7, lat=52.0, lon=5.5, biome="GrassCrops", cloud_cover=0.35,
                                      biome_mask=True)

    def output(self):
        return luigi.LocalTarget(str(Path(self.out) / "DEMO.md"))

    def run(self):
        scene = self.input().path
        converted = yield ConvertPV(l8img=scene, outfolder=str(Path(self.out) / "landsataspv"),
                                    resolution="333M", type_product="biome", quicklook=True)
        lines = [
            "# pvl8da demo outputs",
            "",
            f"- Synthetic Landsat-8 Biome scene: `{scene}`",
            f"- Landsat-8 as Proba-V 333M product: `{converted.path}`",
            f"- Quicklook: `{Path(converted.path).with_suffix('.png')}`",
        ]
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text("\n".join(lines) + "\n")
