"""Label-free model selection for domain adaptation: agreement of the cloud model across a pseudo-simultaneous pair.

A pair's Proba-V (PV) and Landsat-as-Proba-V (LU) patches show the same place within hours. The cloud
U-Net was trained on LU, so its LU mask is the best estimate of the truth available without Proba-V
labels; a good PV -> LU generator G makes the U-Net's mask of G(PV) agree with it. The agreement (the
fraction of pixels whose binary masks match) needs no label and moves with the test accuracy, which
:func:`rank_correlation` measures over the epochs of a run.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

THRESHOLD = 0.5


def cloud_agreement(cloud: Callable, generator: Callable | None, pv: np.ndarray, lu: np.ndarray,
                    batch_size: int = 32) -> float:
    """Fraction of pixels where the cloud masks of ``generator(pv)`` (raw ``pv`` for None) and of ``lu`` match."""
    if len(pv) == 0 or pv.shape != lu.shape:
        raise ValueError(f"need matching, non-empty PV {pv.shape} and LU {lu.shape} patches")
    agree = 0
    for start in range(0, len(pv), batch_size):
        x, y = pv[start:start + batch_size], lu[start:start + batch_size]
        if generator is not None:
            x = generator(x, training=False)
        adapted = np.asarray(cloud(x, training=False)) >= THRESHOLD
        agree += int(np.count_nonzero(adapted == (np.asarray(cloud(y, training=False)) >= THRESHOLD)))
    return agree / float(np.prod(pv.shape[:3]))


def rank_correlation(criterion: Sequence[float], accuracy: Sequence[float]) -> float:
    """Spearman's rank correlation of a selection criterion and the test accuracy over the epochs of a run
    (nan when either is constant or there are fewer than 3 epochs)."""
    if len(criterion) < 3 or np.ptp(criterion) == 0 or np.ptp(accuracy) == 0:
        return float("nan")
    return float(stats.spearmanr(criterion, accuracy).statistic)
