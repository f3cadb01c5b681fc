"""Options, hyper-parameters and output names of CycleGAN training (no TensorFlow: tasks import this eagerly)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pvl8da.errors import InputError

GP_MODES = ("meschederreal", "none")
NORMTYPES = ("batchnorm", "instancenorm", "no")


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

    def __post_init__(self) -> None:
        if self.gradient_penalty_mode not in GP_MODES:
            raise InputError(f"gradient_penalty_mode {self.gradient_penalty_mode!r} not in {GP_MODES}")
        if self.normtype not in NORMTYPES:
            raise InputError(f"normtype {self.normtype!r} not in {NORMTYPES}")
        if self.batch_size < 1 or self.epochs < 0:
            raise InputError(f"batch_size {self.batch_size} and epochs {self.epochs} must be positive")

    @property
    def name(self) -> str:
        """Stem of every output: ``genpv2l8cycle_<df_gen>_<df_disc>_<suffix>``."""
        return f"genpv2l8cycle_{self.df_gen}_{self.df_disc}_{self.suffix}"


def output_paths(folder: str | os.PathLike, config: CycleGANConfig) -> dict[str, Path]:
    """Where a training run writes: final weights of the four networks, checkpoints, logs, history."""
    folder = Path(folder)
    stem = config.name
    return {
        "generator": folder / f"{stem}.weights.h5",
        "generator_l82pv": folder / f"{stem}_genl82pv.weights.h5",
        "discriminator_l8": folder / f"{stem}_discl8.weights.h5",
        "discriminator_pv": folder / f"{stem}_discpv.weights.h5",
        "checkpoints": folder / f"{stem}_checkpoints",
        "logs": folder / f"{stem}_logs",
        "history": folder / f"{stem}_history.csv",
        "config": folder / f"{stem}_config.json",
    }
