"""Hyper-parameters of the trainers, as plain dataclasses (no TensorFlow: the Luigi tasks build their options
from these fields, so each setting and its default is declared once). CycleGAN's are in ``cyclegan_config``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pvl8da.errors import InputError
from pvl8da.runtime import check_precision_name


KEEP_MODES = ("patches", "pixels")


@dataclass(frozen=True)
class GANWeights:
    """Loss weights of SPEC §7."""

    gp: float = 10.0
    cls: float = 1.0
    rec: float = 10.0
    idt: float = 10.0


@dataclass
class GANConfig:
    """Hyper-parameters; the defaults are the paper's (SPEC §7)."""

    iterations: int = 200_000
    decay_start: int | None = None  # default: iterations // 2
    batch_size: int = 16
    n_critic: int = 5
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    width: int = 64
    n_res: int = 6
    d_width: int = 64
    d_layers: int = 6
    val_every: int = 1000
    val_patches: int = 1024
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    augment: bool = True
    identity_warmup: int = 0  # generator steps fitting G(x, c) = x in both domains before the GAN; 0: none
    weights: dict = field(default_factory=lambda: asdict(GANWeights()))
    precision: str = "float32"  # the networks' arithmetic (pvl8da.runtime.PRECISIONS)

    def __post_init__(self) -> None:
        check_precision_name(self.precision)


@dataclass
class UNetConfig:
    """Hyper-parameters of the U-Net runs; ``keep_ratio``/``freeze_encoder``/``init_weights`` make a fine-tune.

    ``calibration_patches`` > 0 also picks a probability threshold by F1 on that seeded labelled sample
    of training patches (the one FCD's threshold comes from) and records it in ``done.json``.
    """

    iterations: int = 50_000
    batch_size: int = 64
    lr: float = 1e-4
    width: int = 64
    blocks: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    cls_weight: float = 1.0
    keep_ratio: float = 1.0
    keep: str = "patches"  # what keep_ratio keeps: a share of the patches (all their pixels), or of every patch's pixels
    freeze_encoder: bool = False
    init_weights: str | None = None
    val_every: int = 1000
    val_patches: int = 2048
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    augment: bool = True
    calibration_patches: int = 0
    calibration_seed: int = 0
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.keep not in KEEP_MODES:
            raise InputError(f"keep {self.keep!r} not in {KEEP_MODES}")
        check_precision_name(self.precision)


@dataclass
class CloudTrainConfig:
    """Hyper-parameters of the cloud U-Net training."""

    epochs: int = 20
    batch_size: int = 16
    patch_size: int = 64
    stride: int = 32
    min_valid_fraction: float = 0.25
    lr: float = 1e-3
    seed: int = 123
    val_fraction: float = 0.25
    steps_per_epoch: int | None = None
    bn_momentum: float = 0.9
    precision: str = "float32"

    def __post_init__(self) -> None:
        check_precision_name(self.precision)
        if self.patch_size % 4:
            raise InputError(f"patch_size {self.patch_size} must be a multiple of 4 (U-Net pooling)")
