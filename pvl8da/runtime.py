"""What the running Keras backend and the hardware offer: accelerator, reduced precision, compiled functions.

TensorFlow is the default backend; inference also runs on JAX (``KERAS_BACKEND``; PyTorch is handled but
untested). Reduced precision is opt-in and refused where the hardware has no fast path for it: ``bfloat16``
needs a GPU or a CPU with bfloat16 instructions (x86 AVX512_BF16 or AMX-BF16, Arm BF16); ``float16`` a GPU or a
CPU with half-precision arithmetic (x86 AVX512_FP16 or AMX-FP16, Arm FP16).
"""
from __future__ import annotations

import functools
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from pvl8da.errors import InputError

PRECISIONS = ("float32", "bfloat16", "float16")
#: CPU flags (/proc/cpuinfo) that give each reduced precision a fast path.
CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16", "bf16"), "float16": ("avx512_fp16", "amx_fp16", "fphp")}
#: Keras dtype policy of each training precision (weights stay float32).
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def backend() -> str:
    """The Keras backend in use: ``tensorflow``, ``jax`` or ``torch``."""
    import keras

    return keras.backend.backend()


@functools.cache
def has_gpu() -> bool:
    """Whether the Keras backend sees a GPU."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if name == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if name == "torch":
        import torch

        return torch.cuda.is_available()
    return False


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty where /proc/cpuinfo is not readable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def check_precision_name(precision: str) -> None:
    """InputError unless ``precision`` is one of :data:`PRECISIONS` (whatever the hardware)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")


def check_precision(precision: str) -> str:
    """``precision`` when this machine runs it fast, else an InputError saying why."""
    check_precision_name(precision)
    if precision == "float32" or has_gpu():
        return precision
    if cpu_flags() & set(CPU_FLAGS[precision]):
        return precision
    raise InputError(
        f"precision {precision}: this {platform.machine()} CPU has no {precision} instructions "
        f"({' or '.join(CPU_FLAGS[precision])}) and no GPU is visible to Keras' {backend()} backend; "
        "it would run slower than float32. Use --precision float32 here.")


def compile_batch_fn(fn: Callable, shape: tuple[int, ...]) -> Callable[[np.ndarray], tuple[np.ndarray, ...]]:
    """``fn`` (backend tensors → a tuple of tensors) compiled for float32 inputs of ``shape`` (first axis: any
    batch), as a function from and to NumPy arrays."""
    import keras

    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(fn, autograph=False, input_signature=[tf.TensorSpec((None,) + shape[1:], tf.float32)])
    elif name == "jax":
        import jax

        compiled = jax.jit(fn)
    else:
        def compiled(x):
            return fn(keras.ops.convert_to_tensor(x))

    def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(keras.ops.convert_to_numpy(y) for y in compiled(x))

    return run


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Keras layers built inside compute in ``precision`` and keep float32 weights (Keras' mixed policies)."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[check_precision(precision)])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def training_optimizer(optimizer, precision: str):
    """``optimizer``, wrapped in Keras' dynamic loss scaling for float16 (bfloat16 has float32's range and
    needs none). Custom loops scale their losses with ``optimizer.scale_loss``; ``apply_gradients`` unscales."""
    if precision != "float16":
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)


def float32(x):
    """``x`` as float32: losses and scores are computed in float32 whatever the networks' precision."""
    import keras

    return keras.ops.cast(x, "float32")
