"""Evaluate a model on a set of cells the same way for every split: eval mode, no_grad.

Train and validation are both measured here at every epoch, so dropout cannot
make validation look better than training (nanoGPT's ``estimate_loss``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genevae.data.batches import InMemoryBatches

__all__ = ["SplitMetrics", "evaluate", "ACTIVE_UNIT_VARIANCE"]

#: A latent dimension is active when the variance over cells of its posterior
#: mean exceeds this (Burda et al. 2015, "Importance Weighted Autoencoders").
ACTIVE_UNIT_VARIANCE = 1e-2


@dataclass(frozen=True)
class SplitMetrics:
    """Averages over the cells of one split.

    Attributes
    ----------
    recon
        Reconstruction loss, nats per cell (summed over genes).
    kl
        KL divergence, nats per cell (summed over latent dimensions).
    kl_per_dim
        (n_latent,) KL of each dimension, nats per cell.
    posterior_mean_variance
        (n_latent,) variance over cells of the posterior mean.
    n_cells
        Cells evaluated.
    """

    recon: float
    kl: float
    kl_per_dim: np.ndarray
    posterior_mean_variance: np.ndarray
    n_cells: int

    @property
    def active_units(self) -> int:
        return int((self.posterior_mean_variance > ACTIVE_UNIT_VARIANCE).sum())


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: InMemoryBatches) -> SplitMetrics:
    """Average reconstruction and KL over ``batches`` in eval mode.

    The KL weight does not enter: the caller combines recon and KL with β.
    """
    was_training = model.training
    model.eval()
    recon = kl = 0.0
    kl_per_dim = mean_sum = mean_sq_sum = None
    n_cells = 0
    for batch in batches.epoch(0):
        out = model.loss(batch.x, batch.library, batch.conditions, kl_weight=1.0)
        recon += out.reconstruction_loss.double().sum().item()
        kl += out.kl_local.double().sum().item()
        mu = out.qz_mean.double()  # (batch, n_latent)
        if kl_per_dim is None:
            kl_per_dim = torch.zeros(mu.shape[1], dtype=torch.float64)
            mean_sum = torch.zeros_like(kl_per_dim)
            mean_sq_sum = torch.zeros_like(kl_per_dim)
        kl_per_dim += out.kl_per_dim.double().sum(0)
        mean_sum += mu.sum(0)
        mean_sq_sum += (mu * mu).sum(0)
        n_cells += len(batch)
    model.train(was_training)
    mean = mean_sum / n_cells
    variance = (mean_sq_sum / n_cells - mean * mean).clamp_min(0.0) * n_cells / max(n_cells - 1, 1)
    return SplitMetrics(
        recon=recon / n_cells,
        kl=kl / n_cells,
        kl_per_dim=(kl_per_dim / n_cells).numpy(),
        posterior_mean_variance=variance.numpy(),
        n_cells=n_cells,
    )
