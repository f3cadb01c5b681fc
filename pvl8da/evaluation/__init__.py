"""Scores: metrics and reports for domain adaptation (``da``) and the Biome FCD evaluation (``biome``)."""
