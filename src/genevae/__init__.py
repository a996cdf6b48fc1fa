"""genevae: train variational autoencoders on gene expression and diagnose the training."""

__version__ = "0.1.0"
