"""Options, hyper-parameters and output names of CycleGAN training (no TensorFlow: tasks import this eagerly)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pvl8da.errors import InputError
from pvl8da.runtime import check_precision_name

GP_MODES = ("meschederreal", "none")
NORMTYPES = ("batchnorm", "instancenorm", "no")
#: ``constant``: the same learning rate every epoch; ``linear``: constant for the first half of the epochs,
#: then decayed linearly towards 0 (the schedule of the CycleGAN paper), set at the start of each epoch.
LR_SCHEDULES = ("constant", "linear")
#: Name prefix of each network's final weights (the original project's): PV -> LU and LU -> PV
#: generators, Landsat and Proba-V discriminators.
NETWORK_PREFIXES = {"generator": "genpv2l8cycle", "generator_l82pv": "genl82pvcycle",
                    "discriminator_l8": "discl8cycle", "discriminator_pv": "discpvcycle"}


@dataclass
class CycleGANConfig:
    """Hyper-parameters of the domain-adaptation training (defaults: SPEC §5 and the original task)."""

    df_gen: int = 64
    df_disc: int = 8
    normtype: str = "batchnorm"
    gradient_penalty_mode: str = "meschederreal"
    gradient_penalty_weight: float = 10.0
    identity_lambda: float = 5.0
    cycled_lambda: float = 5.0
    segmentation_consistency_lmbda: float = 1.0
    lr: float = 1e-4
    beta_1: float = 0.5
    batch_size: int = 48
    epochs: int = 25
    seed: int = 123
    suffix: str = ""
    steps_per_epoch: int | None = None
    summary_every: int = 50
    val_scenes: int = 1
    ema_decay: float = 0.0
    lr_schedule: str = "constant"
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.gradient_penalty_mode not in GP_MODES:
            raise InputError(f"gradient_penalty_mode {self.gradient_penalty_mode!r} not in {GP_MODES}")
        if self.normtype not in NORMTYPES:
            raise InputError(f"normtype {self.normtype!r} not in {NORMTYPES}")
        if self.batch_size < 1 or self.epochs < 0:
            raise InputError(f"batch_size {self.batch_size} and epochs {self.epochs} must be positive")
        check_precision_name(self.precision)
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"lr_schedule {self.lr_schedule!r} not in {LR_SCHEDULES}")
        if not 0.0 <= self.ema_decay < 1.0 or self.val_scenes < 0:
            raise InputError(f"ema_decay {self.ema_decay} must be in [0, 1) and val_scenes {self.val_scenes} >= 0")

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0-based) under :data:`LR_SCHEDULES`."""
        start = self.epochs // 2
        if self.lr_schedule == "constant" or epoch < start:
            return self.lr
        return self.lr * (self.epochs - epoch) / (self.epochs - start + 1)

    def network_name(self, network: str) -> str:
        """Stem of a network's outputs, as the original project names it: ``<prefix>_<df_gen>_<df_disc>_<suffix>``."""
        return f"{NETWORK_PREFIXES[network]}_{self.df_gen}_{self.df_disc}_{self.suffix}"

    @property
    def name(self) -> str:
        """Stem of the PV -> LU generator, shared by the run's checkpoints, logs, history and config."""
        return self.network_name("generator")


def recorded_provenance(folder: str | os.PathLike, config: CycleGANConfig) -> dict | None:
    """The provenance a run's ``<stem>_config.json`` records (see :mod:`pvl8da.storage.provenance`), if any."""
    path = output_paths(folder, config)["config"]
    return json.loads(path.read_text()).get("provenance") if path.is_file() else None


def output_paths(folder: str | os.PathLike, config: CycleGANConfig) -> dict[str, Path]:
    """Where a training run writes: final weights of the four networks (the PV -> LU generator of the epoch
    selected on validation pairs, the others of the last epoch), checkpoints, each epoch's PV -> LU generator
    (``epochs/epoch_001.weights.h5``, ...), logs, history."""
    folder = Path(folder)
    stem = config.name
    return {
        **{network: folder / f"{config.network_name(network)}.weights.h5" for network in NETWORK_PREFIXES},
        "checkpoints": folder / f"{stem}_checkpoints",
        "epochs": folder / f"{stem}_epochs",
        "logs": folder / f"{stem}_logs",
        "history": folder / f"{stem}_history.csv",
        "config": folder / f"{stem}_config.json",
        "done": folder / f"{stem}_done.json",
    }
