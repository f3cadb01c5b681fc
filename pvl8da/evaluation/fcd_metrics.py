"""Former home of FCD's scores, kept for the modules that still import it: use :mod:`pvl8da.evaluation.metrics`
(``class_scores``, ``best_threshold``, ``SCORE_NAMES``). Remove once ``pvl8da/training/fcd_*.py`` import from there."""
from __future__ import annotations

from pvl8da.evaluation.metrics import SCORE_NAMES, Confusion, best_threshold, confusion
from pvl8da.evaluation.metrics import class_scores as scores

__all__ = ["SCORE_NAMES", "Confusion", "confusion", "scores", "best_threshold"]
