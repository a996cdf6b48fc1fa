"""Evaluate a model on a set of cells the same way for every split: eval mode, no_grad.

Train and validation are both measured here at every epoch, so dropout cannot
make validation look better than training (nanoGPT's ``estimate_loss``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.data.batches import BatchSource

__all__ = ["SplitMetrics", "evaluate"]


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
def evaluate(
    model: torch.nn.Module,
    batches: BatchSource,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> SplitMetrics:
    """Average reconstruction and KL over ``batches`` in eval mode.

    The KL weight does not enter: the caller combines recon and KL with β.
    ``reduce`` sums the packed per-process sums over processes (DDP, where each
    process holds a shard of the cells); the averages are then global.
    """
    was_training = model.training
    model.eval()
    sums = None  # recon, kl, cells, then per dimension: kl, mean, mean squared (float64, CPU)
    for batch in batches.epoch(0):
        out = model.loss(batch.x, batch.library, batch.conditions, kl_weight=1.0)
        mu = out.qz_mean.cpu().double()  # (batch, n_latent); MPS has no float64
        kl_per_dim = out.kl_per_dim.cpu().double()
        part = torch.cat([
            torch.stack([out.reconstruction_loss.cpu().double().sum(),
                         out.kl_local.cpu().double().sum(),
                         torch.tensor(float(len(batch)), dtype=torch.float64)]),
            kl_per_dim.sum(0), mu.sum(0), (mu * mu).sum(0),
        ])  # (3 + 3 n_latent,)
        sums = part if sums is None else sums + part
    model.train(was_training)
    if sums is None:
        sums = torch.zeros(3 + 3 * model.n_latent, dtype=torch.float64)
    if reduce is not None:
        sums = reduce(sums)
    recon, kl, n_cells = sums[:3].tolist()
    kl_per_dim, mean_sum, mean_sq_sum = sums[3:].reshape(3, -1)
    n = max(n_cells, 1.0)
    mean = mean_sum / n
    variance = (mean_sq_sum / n - mean * mean).clamp_min(0.0) * n / max(n - 1, 1)
    return SplitMetrics(
        recon=recon / n,
        kl=kl / n,
        kl_per_dim=(kl_per_dim / n).numpy(),
        posterior_mean_variance=variance.numpy(),
        n_cells=int(n_cells),
    )
