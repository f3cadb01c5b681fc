"""Batch wrapper tasks: convert or adapt many inputs, spread over the workers of a central scheduler.

``--scenes`` / ``--products`` is either a text file with one path per line (blank lines and
``#`` comments skipped, relative paths taken from the list file's folder) or a glob pattern
(``**`` allowed). A rerun skips every input whose output exists.
"""
from __future__ import annotations

import glob
from pathlib import Path

import luigi

from pvl8da.errors import InputError
from tasks.convert import ConvertPV
from tasks.inference import InferenceDA


def list_inputs(spec: str) -> list[Path]:
    """The paths named by a list file or matched by a glob pattern, in a stable order."""
    path = Path(spec)
    if path.is_file():
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        found = [path.parent / line for line in lines if line]
    else:
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True))
    if not found:
        raise InputError(f"{spec}: no inputs (neither a list file nor a glob pattern that matches anything)")
    return list(dict.fromkeys(found))


class ConvertAll(luigi.WrapperTask):
    """ConvertPV for every Landsat-8 scene folder listed in ``--scenes``."""

    scenes = luigi.Parameter(description="list file (one scene folder per line) or glob of scene folders")
    outfolder = luigi.OptionalParameter(default=None, description="ConvertPV --outfolder (else its default)")
    resolution = luigi.OptionalParameter(default=None, description="ConvertPV --resolution (else its default)")
    type_product = luigi.OptionalParameter(default=None,
                                           description="ConvertPV --type-product (else its default)")
    download = luigi.OptionalParameter(default=None, description="ConvertPV --download: fetch missing scenes "
                                                                 "from biome or stac (else its default)")

    def requires(self):
        options = {name: getattr(self, name) for name in ("outfolder", "resolution", "type_product", "download")
                   if getattr(self, name) is not None}
        return [ConvertPV(l8img=str(scene), **options) for scene in list_inputs(self.scenes)]


class InferenceAll(luigi.WrapperTask):
    """InferenceDA for every Proba-V product in ``--products``; ``<dest>/<name>_ADAPTED.HDF5`` each."""

    products = luigi.Parameter(description="list file (one HDF5 product per line) or glob of products")
    dest = luigi.Parameter(default="adapted", description="folder of the adapted products")

    def requires(self):
        destinations: dict[Path, Path] = {}
        for product in list_inputs(self.products):
            dest = Path(self.dest) / f"{product.stem}_ADAPTED.HDF5"
            if dest in destinations:
                raise InputError(f"{product} and {destinations[dest]} would both be written to {dest}: "
                                 "run them with different --dest folders")
            destinations[dest] = product
        return [InferenceDA(pvimage=str(product), image_dest=str(dest), make_folder=True)
                for dest, product in destinations.items()]
