"""Thresholds chosen by pixel F1 on a seeded labelled sample of training patches.

FCD thresholds its cloud map this way (SPEC §7); FCD+ can use the same sample to recalibrate its
probabilities, which it learnt from pseudo masks rather than from the truth.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from pvl8da.errors import InputError
from pvl8da.datasets.patch_data import PatchData
from pvl8da.evaluation.metrics import best_threshold

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Maps a batch ``x`` (B, P, P, 10) to per-pixel scores (B, P, P); higher means cloudier."""


def score_samples(score: ScoreFn, batches: Iterable[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and pixel labels (cloud: True) of the valid pixels of labelled patch batches."""
    values, truth = [], []
    for b in batches:
        s = np.asarray(score(b["x"]))
        valid = b["valid"][..., 0] > 0
        values.append(s[valid])
        truth.append(b["cloud"][..., 0][valid] > 0)
    return np.concatenate(values), np.concatenate(truth)


def labelled_sample(n: int, n_patches: int, seed: int) -> np.ndarray:
    """Sorted indices of the seeded sample of ``min(n_patches, n)`` of ``n`` training patches."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n_patches, n), replace=False))


def sample_threshold(score: ScoreFn, train: PatchData, n_patches: int, seed: int,
                     batch_size: int = 32) -> tuple[float, float]:
    """Threshold (and its F1) maximising pixel F1 of ``score`` on the labelled sample; ``train``
    must hold the real masks (no pseudo ``targets``)."""
    if train.targets is not None:
        raise InputError(f"{train.path}: calibration needs the real masks, not pseudo targets")
    idx = labelled_sample(len(train), n_patches, seed)
    batches = (train.batch(idx[s:s + batch_size]) for s in range(0, len(idx), batch_size))
    values, truth = score_samples(score, batches)
    if not truth.any():
        raise InputError(f"{train.path}: the labelled sample of {len(idx)} training patches has no cloud pixel")
    return best_threshold(values, truth)
