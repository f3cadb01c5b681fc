"""Prediction: tiled cloud detection on products (``products``), FCD cloud maps and whole-scene prediction.

``infer_da``, ``infer_clouds`` and ``run_inference`` are re-exported from :mod:`pvl8da.inference.products`.
"""
from pvl8da.inference.products import infer_clouds, infer_da, run_inference  # noqa: F401
