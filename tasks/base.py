"""What every pvl8da task shares: outputs that are never stale, input errors that stop at once, and the
command line's exit codes and log lines.

A target counts as complete only when it exists and was made from exactly these parameters and files
(:mod:`pvl8da.storage.provenance`); one made differently stops the run with a message that names the difference
and ``--overwrite``. Input errors that can be seen before running (``check_inputs``) are raised from
``complete()``: Luigi then reports a scheduling error and never runs, nor retries, the task.
"""
from __future__ import annotations

import atexit
import dataclasses
import gc
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import luigi
from luigi.freezing import recursively_unfreeze
from luigi.task import flatten

from pvl8da.runtime import PRECISIONS
from pvl8da.storage import provenance
from pvl8da.errors import InputError

#: Exit status of ``python -m luigi --module tasks …`` unless the user's configuration sets its own
#: (Luigi's defaults are all 0, so scripts and CI would carry on after a failure). Luigi's ``missing_data``
#: is for incomplete ExternalTasks, which this project has none of: missing inputs are scheduling errors.
EXIT_CODES = {"task_failed": 30, "scheduling_error": 35, "unhandled_exception": 40}


#: The Luigi parameter of each annotation that the trainers' dataclasses give the fields tasks expose.
PARAMETER_TYPES: dict[str, Callable[..., luigi.Parameter]] = {
    "int": luigi.IntParameter, "float": luigi.FloatParameter, "str": luigi.Parameter,
    "int | None": luigi.OptionalIntParameter, "list[int]": luigi.ListParameter,
    "bool": lambda **options: luigi.BoolParameter(parsing=luigi.BoolParameter.EXPLICIT_PARSING, **options)}


class OutputMadeDifferently(InputError):
    """An output exists but was made from other parameters or files."""


def skip_final_collection() -> None:
    """Let the command exit without the interpreter's last garbage collection: once TensorFlow is imported it
    walks millions of objects for 1.1 s (of a 15 s InferenceDA), to free what the exit frees anyway. Files and
    temporary folders are closed by their own context managers and finalizers, before it."""
    atexit.register(gc.freeze)


def install_exit_codes() -> None:
    """Give Luigi's ``[retcode]`` section the project's exit codes where the configuration has none."""
    config = luigi.configuration.get_config()
    if not config.has_section("retcode"):
        config.add_section("retcode")
    for key, code in EXIT_CODES.items():
        if not config.has_option("retcode", key):
            config.set("retcode", key, str(code))


def show_library_logs() -> None:
    """Let pvl8da's INFO lines (progress, resuming, per-epoch losses) through at Luigi's log level.

    Luigi's own handler sits on its ``luigi-interface`` logger only; where nothing handles the root logger,
    pvl8da's logger gets a handler of the same format.
    """
    level = getattr(logging, str(luigi.interface.core().log_level).upper(), logging.INFO)
    logger = logging.getLogger("pvl8da")
    logger.setLevel(max(level, logging.INFO))
    if all(isinstance(h, logging.NullHandler) for h in logger.handlers) and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)


class PVL8DATask(luigi.Task):
    """Base of the tasks that make files from parameters and input files (see the module docstring)."""

    overwrite = luigi.BoolParameter(default=False, significant=False,
                                    description="replace outputs that were made from other parameters or files")

    def check_inputs(self) -> None:
        """Raise InputError for input errors that can be seen without running (missing or malformed files)."""

    def provenance_files(self) -> dict[str, str | os.PathLike]:
        """Files the outputs are made from, by name: paths, or ``sha256:<hex>`` where only the digest is known."""
        return {}

    def provenance_parameters(self) -> dict[str, Any]:
        """The significant parameters, which the outputs record."""
        return {name: getattr(self, name) for name, param in self.get_params() if param.significant}

    def provenance_record(self) -> dict:
        """What the outputs record; the files as they are now (call it in run(), after resolving them)."""
        return provenance.make_record(self.task_family, self.provenance_parameters(), self.provenance_files())

    def recorded_provenance(self) -> dict | None:
        """The provenance recorded by the existing outputs: by default the first output's HDF5 attribute."""
        return provenance.read_hdf5(flatten(self.output())[0].path)

    def complete(self) -> bool:
        outputs = flatten(self.output())
        if not all(target.exists() for target in outputs):
            self.check_inputs()
            return False
        defaults = {name: param._default for name, param in self.get_params()
                    if param.significant and param._default is not luigi.parameter._no_value}
        found = provenance.differences(self.recorded_provenance(), self.task_family, self.provenance_parameters(),
                                       self.provenance_files(), defaults)
        if not found:
            return True
        if self.overwrite:
            return False
        raise OutputMadeDifferently(
            f"{outputs[0].path} exists but was not made by this command: " + "; ".join(found)
            + ". Pass --overwrite to replace it, or choose another output.")


class Folder(luigi.Task):
    """An output folder made before the tasks that write into it (so their requires() write nothing)."""

    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)

    def run(self):
        Path(self.path).mkdir(parents=True, exist_ok=True)


#: ``--precision`` of the trainers (choices and help), declared once.
PRECISION_CHOICES = {"precision": PRECISIONS}
PRECISION_HELP = {"precision": "the networks' arithmetic: bfloat16 or float16 where the hardware has it (refused "
                               "elsewhere; weights stay float32); float32 is the reference"}


def config_parameters(config: type, *names: str, choices: dict[str, Iterable] | None = None,
                      descriptions: dict[str, str] | None = None, **defaults: Any) -> Callable[[type], type]:
    """Class decorator: Luigi parameters for the named fields of the dataclass ``config`` (and those given new
    ``defaults``), with its types and defaults, so each setting is declared once (build it back with make_config)."""
    fields = {f.name: f for f in dataclasses.fields(config)}

    def decorate(cls: type) -> type:
        for name in [*names, *defaults]:
            field = fields[name]
            if name in defaults:
                default = defaults[name]
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = field.default
            options = {"default": default, "description": (descriptions or {}).get(name)}
            if name in (choices or {}):
                parameter = luigi.ChoiceParameter(choices=list(choices[name]), **options)
            else:
                parameter = PARAMETER_TYPES[str(field.type)](**options)
            setattr(cls, name, parameter)
            parameter.__set_name__(cls, name)  # what a class-body declaration gets from Python
        return cls
    return decorate


def make_config(config_class: type, task: luigi.Task, **extra: Any) -> Any:
    """The dataclass ``config_class`` from the task's parameters named like its fields, then ``extra``."""
    values = {f.name: recursively_unfreeze(task.param_kwargs[f.name]) for f in dataclasses.fields(config_class)
              if f.name in task.param_kwargs}
    return config_class(**{**values, **extra})
