"""Held-out measurements that need the model: IWAE bound, no-latent baseline, traversal.

The numbers computed here are handed, as plain values, to the latent-space checks
of :mod:`genevae.diagnosis`, which never touch a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genevae.data.batches import InMemoryBatches
from genevae.model.baseline import NoLatentBaseline
from genevae.model.vae import VAE
from genevae.train.adamw import FlatAdamW
from genevae.train.flat import FlatParameters

__all__ = [
    "BASELINE_EPOCHS",
    "BASELINE_LR",
    "TRAVERSAL_RANGE",
    "IWAEResult",
    "fit_no_latent_baseline",
    "mean_reconstruction_loss",
    "importance_weighted_bound",
    "latent_traversal",
]

#: Passes of Adam over the baseline's training cells; the model is linear in its
#: parameters, so a few passes at a large step reach its optimum.
BASELINE_EPOCHS = 30  # genevae choice: held-out NLL changes < 0.1% beyond this on the tests' data
BASELINE_LR = 0.05  # genevae choice
_BASELINE_BATCH = 256
#: A traversal moves one latent coordinate from -2 to +2 prior standard deviations.
TRAVERSAL_RANGE = (-2.0, 2.0)  # genevae choice: the central 95% of the prior


def fit_no_latent_baseline(
    batches: InMemoryBatches,
    n_categories: Sequence[int],
    likelihood: str,
    fixed_variance: bool,
    seed: int = 0,
    n_epochs: int = BASELINE_EPOCHS,
) -> NoLatentBaseline:
    """Fit :class:`~genevae.model.baseline.NoLatentBaseline` by maximum likelihood.

    Adam from :data:`BASELINE_LR`, decaying linearly to 0 over ``n_epochs`` passes.
    ``batches`` holds the training cells (shuffled). The intercepts start at the
    per-gene mean (Gaussian) or log mean share (NB/ZINB) of those cells. Adam is the
    trainer's :class:`~genevae.train.adamw.FlatAdamW` without weight decay, over the
    baseline's parameters made one (:class:`~genevae.train.flat.FlatParameters`):
    ``torch.optim`` would import ``torch._dynamo``, 1.0-1.6 s of every evaluation.
    """
    torch.manual_seed(seed)
    n_genes = batches.x.shape[1]
    baseline = NoLatentBaseline(n_genes, n_categories, likelihood, fixed_variance)
    with torch.no_grad():
        if likelihood == "gaussian":
            baseline.intercept.copy_(batches.x.mean(0))
        else:
            share = batches.x.sum(0) / batches.x.sum().clamp_min(1.0)
            baseline.intercept.copy_(torch.log(share.clamp_min(1e-8)))
    flat = FlatParameters(baseline)
    optimizer = FlatAdamW(flat.parameter, lr=BASELINE_LR, weight_decay=0.0)
    n_steps = n_epochs * len(batches)
    step = 0
    for epoch in range(n_epochs):
        for batch in batches.epoch(epoch):
            loss = baseline.reconstruction_loss(batch.x, batch.library, batch.conditions).mean()
            flat.backward(loss)
            # the step size decays linearly to 0, so mini-batch noise vanishes at the end
            optimizer.param_groups[0]["lr"] = BASELINE_LR * (1.0 - step / n_steps)
            optimizer.step()
            step += 1
    baseline.eval()
    return baseline


@torch.no_grad()
def mean_reconstruction_loss(baseline: NoLatentBaseline, batches: InMemoryBatches) -> float:
    """Mean -log p(x | library, c) over ``batches``' cells, nats per cell."""
    total, n_cells = 0.0, 0
    for batch in batches.epoch(0):
        total += baseline.reconstruction_loss(batch.x, batch.library, batch.conditions).double().sum().item()
        n_cells += len(batch)
    return total / max(n_cells, 1)


@dataclass(frozen=True)
class IWAEResult:
    """Importance-weighted bound and the single-sample ELBO on the same cells.

    Both are exact log-likelihood bounds in nats per cell (the fixed-variance
    Gaussian includes its constant), so ``iwae >= elbo`` up to sampling noise and
    ``gap = iwae - elbo`` measures how loose the ELBO is.
    """

    iwae: float
    elbo: float
    n_importance: int
    n_cells: int

    @property
    def gap(self) -> float:
        return self.iwae - self.elbo


@torch.no_grad()
def importance_weighted_bound(
    model: VAE, batches: InMemoryBatches, n_importance: int = 100, seed: int = 0
) -> IWAEResult:
    """IWAE bound (Burda et al. 2015) with ``n_importance`` samples, and the ELBO (K = 1)."""
    torch.manual_seed(seed)
    model.eval()
    iwae = elbo = 0.0
    n_cells = 0
    for batch in batches.epoch(0):
        args = (batch.x, batch.library, batch.conditions)
        iwae += model.importance_weighted_log_likelihood(*args, n_importance).double().sum().item()
        elbo += model.importance_weighted_log_likelihood(*args, 1).double().sum().item()
        n_cells += len(batch)
    return IWAEResult(iwae / n_cells, elbo / n_cells, n_importance, n_cells)


@torch.no_grad()
def latent_traversal(
    model: VAE,
    dims: Sequence[int],
    library: float,
    conditions: np.ndarray,
    gene_names: Sequence[str],
    n_top: int = 10,
) -> dict[int, list[tuple[str, float]]]:
    """For each latent dimension in ``dims``, the genes whose decoded mean moves most.

    z is 0 except coordinate j, moved over :data:`TRAVERSAL_RANGE`; the cell has
    library size ``library`` and condition codes ``conditions`` (n_keys,). The
    change is log2(mean(+2) / mean(-2)) for count likelihoods and mean(+2) - mean(-2)
    (standardised units) for the Gaussian. Returns ``{j: [(gene, change), ...]}``,
    largest |change| first.
    """
    model.eval()
    low, high = TRAVERSAL_RANGE
    c = torch.as_tensor(np.asarray(conditions, dtype=np.int64)).reshape(1, -1).expand(2, -1)
    lib = torch.full((2,), float(library))
    out: dict[int, list[tuple[str, float]]] = {}
    for j in dims:
        z = torch.zeros(2, model.n_latent)
        z[0, j], z[1, j] = low, high
        mean = model.decode_mean(z, lib, c)  # (2, n_genes)
        if model.likelihood == "gaussian":
            change = mean[1] - mean[0]
        else:
            change = torch.log2(mean[1].clamp_min(1e-12) / mean[0].clamp_min(1e-12))
        order = torch.argsort(change.abs(), descending=True)[:n_top]
        out[int(j)] = [(str(gene_names[i]), float(change[i])) for i in order.tolist()]
    return out
