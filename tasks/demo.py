"""Demo: the main pipelines end to end on an embedded synthetic default (``make demo``)."""
from pathlib import Path

import luigi

from tasks.convert import ConvertPV
from tasks.inference import InferenceDA
from tasks.synthetic import GenerateSyntheticScene
from tasks.training import TrainDefaultModels

PLACE = dict(seed=7, lat=52.0, lon=5.5, biome="GrassCrops", cloud_cover=0.35)


class Demo(luigi.Task):
    """A synthetic Biome scene converted to Proba-V 333M; InferenceDA (project checkpoints) on a synthetic
    Proba-V product of the same place, 15 minutes earlier; and the training chain in miniature."""

    out = luigi.Parameter(default="demo_output")

    def requires(self):
        out = Path(self.out)
        return {"landsat8": GenerateSyntheticScene(dest=str(out / "landsat8"), kind="landsat8", rows=768, cols=768,
                                                   biome_mask=True, **PLACE),
                "probav": GenerateSyntheticScene(dest=str(out / "probav"), kind="probav", rows=400, cols=600,
                                                 with_truth=True, **PLACE)}

    def output(self):
        return luigi.LocalTarget(str(Path(self.out) / "DEMO.md"))

    def run(self):
        out = Path(self.out)
        scene, product = self.input()["landsat8"].path, Path(self.input()["probav"].path)
        converted = yield ConvertPV(l8img=scene, outfolder=str(out / "landsataspv"), resolution="333M",
                                    type_product="biome", quicklook=True)
        adapted = yield InferenceDA(pvimage=str(product), make_folder=True,
                                    image_dest=str(out / "adapted" / f"{product.stem}_ADAPTED.HDF5"))
        training = out / "training"
        yield TrainDefaultModels(work_dir=str(training), checkpoints=str(training / "checkpoints"), n_train_pairs=2,
                                 n_test_pairs=1, l8_size=1536, cloud_epochs=3, cloud_steps=10, gan_epochs=2,
                                 gan_steps=5, gan_batch_size=2)
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(demo_report(scene, converted, product, adapted, training))


def demo_report(scene: str, converted: dict, product: Path, adapted: dict, training: Path) -> str:
    """DEMO.md: where each output of the demo is, and the miniature chain's evaluation table."""
    adapted_path = Path(adapted["product"].path)
    lines = [
        "# pvl8da demo outputs",
        "",
        "Synthetic data only: these figures say nothing about real imagery.",
        "",
        "## Landsat-8 -> Proba-V conversion (ConvertPV)",
        f"- Synthetic Landsat-8 Biome scene: `{scene}`",
        f"- Landsat-8 as Proba-V 333M product: `{converted['product'].path}`",
        f"- Quicklook: `{converted['quicklook'].path}`",
        "",
        "## Cloud detection on a Proba-V product (InferenceDA, checkpoints/)",
        f"- Synthetic Proba-V product: `{product}` (true clouds: `{product.stem}_truth.tif`)",
        f"- Adapted product with CM_PVDAGANS: `{adapted_path}`",
        f"- Cloud mask COG: `{adapted['clouds'].path}`",
        f"- Quicklook: `{adapted_path.with_name(adapted_path.stem + '_quicklook.png')}`",
        "",
        "## Training chain in miniature (TrainDefaultModels, a few steps)",
        f"- Pairs, datasets, models and checkpoints under `{training}`",
        "- A CycleGAN trained for 10 steps has not learnt the adaptation yet: the table shows that the",
        "  chain runs end to end, not what trained models reach (see the README for those figures).",
        "",
        (training / "evaluation" / "evaluation.md").read_text(),
    ]
    return "\n".join(lines) + "\n"
