"""KL divergence of a diagonal Gaussian posterior from the standard normal prior."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["kl_normal_standard"]


def kl_normal_standard(qz_mean: Tensor, qz_logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, in nats.

    KL_j = 1/2 (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)  (Kingma & Welling 2014, app. B).

    Parameters
    ----------
    qz_mean
        (batch, n_latent) posterior means mu.
    qz_logvar
        (batch, n_latent) posterior log-variances log sigma^2.

    Returns
    -------
    Tensor
        (batch, n_latent) KL in nats per cell and latent dimension; >= 0, and 0 exactly
        when the posterior equals the prior.
    """
    return 0.5 * (qz_mean**2 + torch.exp(qz_logvar) - 1.0 - qz_logvar)
