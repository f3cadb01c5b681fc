"""Luigi task that downloads one Landsat-8 scene folder (Biome archive or Collection 2 STAC item)."""
from __future__ import annotations

from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility

from pvl8da.storage.download import BIOME_BASE_URL, MAX_ARCHIVE_BYTES, STAC_URL, download_scene


class DownloadLandsat8(luigi.Task):
    """``<dest>/<scene ID>/`` with B1-B11, the quality band and the MTL, as ConvertPV reads it.

    The folder appears in one rename once complete, so its MTL is a safe completion marker.
    The URLs may carry credentials: they are left out of the task ID, its repr and the scheduler.
    """

    scene_id = luigi.Parameter(description="Landsat scene or product ID, e.g. LC81390292014135LGN00")
    source = luigi.ChoiceParameter(choices=["biome", "stac"], default="biome",
                                   description="biome: Cloud Cover Assessment archive; stac: Collection 2 item")
    dest = luigi.Parameter(default="landsat8", description="folder that receives <scene ID>/")
    base_url = luigi.Parameter(default=BIOME_BASE_URL, significant=False,
                               visibility=ParameterVisibility.PRIVATE,
                               description="Biome archives: <base-url>/<scene ID>.tar.gz")
    stac_url = luigi.Parameter(default=STAC_URL, significant=False, visibility=ParameterVisibility.PRIVATE,
                               description="STAC API root (collection landsat-c2l1)")
    max_archive_gb = luigi.FloatParameter(default=MAX_ARCHIVE_BYTES / 2**30, significant=False,
                                          description="largest unpacked size of a Biome archive, in GiB")
    resources = {"download": 1}

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(self.dest) / self.scene_id / f"{self.scene_id}_MTL.txt"))

    def run(self) -> None:
        download_scene(self.scene_id, self.dest, self.source, base_url=self.base_url, stac_url=self.stac_url,
                       max_archive_bytes=int(self.max_archive_gb * 2**30))
