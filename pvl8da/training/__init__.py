"""Trainers: the CycleGAN, the cloud U-Net, FCD's Fixed-Point GAN and U-Nets, their losses and summaries."""
