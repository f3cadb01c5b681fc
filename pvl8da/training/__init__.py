"""Trainers: the CycleGAN, the cloud U-Net, FCD's Fixed-Point GAN and U-Nets, the skeleton they share, their
losses, D4 augmentation and TensorBoard summaries."""
