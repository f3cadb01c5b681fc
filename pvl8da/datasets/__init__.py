"""Training data: pseudo-simultaneous Proba-V/Landsat pairs and Biome scenes, splits and patches."""
