"""FCD: weakly supervised cloud detection on Landsat-8 with a Fixed-Point GAN (SPEC §7).

Modules: ``scenes`` (band stack, scaling), ``patches`` (split and patch files), ``models``,
``losses``, ``train_gan`` (FCD), ``calibration`` (thresholds by F1 on a labelled sample), ``masks``
(cloud maps, threshold, pseudo masks), ``train_unet`` (FCD+, fine-tuning, fully supervised),
``tiling`` (whole-scene prediction), ``metrics`` and ``evaluate``.
"""
