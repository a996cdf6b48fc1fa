"""The no-latent baseline: the model's likelihood per gene, with library and conditions only.

A latent space earns its keep only when it explains the cells better than this model,
which knows everything the VAE is given except z. Its parameters per gene g:

- Gaussian: loc_g(c) = a_g + Σ_k b_{g,k}(c_k) (additive condition effects), variance
  fixed at 1/2 or learned per gene, as in the VAE;
- NB: μ_g(c) = library · softmax_g(a + Σ_k b_k(c_k)), gene-wise θ_g;
- ZINB: as NB, with dropout logits π_g(c) = d_g + Σ_k e_{g,k}(c_k).

Held-out -log p(x | c) of this model against the VAE's held-out reconstruction plus
KL (the negative ELBO) says whether the latent carries information about the cells
(see :mod:`genevae.diagnosis.latent_findings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Normal

from genevae.model.likelihoods import (
    FIXED_GAUSSIAN_VARIANCE,
    NegativeBinomial,
    ZeroInflatedNegativeBinomial,
)
from genevae.model.networks import ConditionEncoder
from genevae.model.vae import reconstruction_nll

__all__ = ["NoLatentBaseline"]


def _zero_linear(n_features: int, n_genes: int) -> nn.Linear | None:
    """Condition effects starting at 0; None for an unconditional model."""
    if n_features == 0:
        return None
    layer = nn.Linear(n_features, n_genes, bias=False)
    nn.init.zeros_(layer.weight)
    return layer


def _shifted(intercept: Tensor, effects: nn.Linear | None, c: Tensor) -> Tensor:
    """(batch, n_genes) intercept plus condition effects."""
    if effects is None:
        return intercept.expand(c.shape[0], -1)
    return intercept + effects(c)


class NoLatentBaseline(nn.Module):
    """p(x | library, c) with no latent variable.

    Parameters
    ----------
    n_genes
        Genes modelled.
    n_categories
        Categories of each condition key (may be empty).
    likelihood
        ``"gaussian"``, ``"nb"`` or ``"zinb"``.
    fixed_variance
        For the Gaussian: variance 1/2 (the reference's squared error) instead of a
        learned per-gene variance.
    """

    def __init__(
        self, n_genes: int, n_categories: Sequence[int], likelihood: str, fixed_variance: bool
    ) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.fixed_variance = likelihood == "gaussian" and fixed_variance
        self.conditions = ConditionEncoder(n_categories, "onehot")
        n_features = self.conditions.n_output
        self.intercept = nn.Parameter(torch.zeros(n_genes))  # (n_genes,)
        self.effects = _zero_linear(n_features, n_genes)
        if likelihood == "gaussian" and not self.fixed_variance:
            self.log_variance = nn.Parameter(torch.zeros(n_genes))
        if likelihood in ("nb", "zinb"):
            self.log_theta = nn.Parameter(torch.zeros(n_genes))
        if likelihood == "zinb":
            self.zi_intercept = nn.Parameter(torch.full((n_genes,), -2.0))
            self.zi_effects = _zero_linear(n_features, n_genes)

    def generative(self, library: Tensor, conditions: Tensor) -> Distribution:
        """p(x | library, c) over (batch, n_genes)."""
        c = self.conditions(conditions, dtype=self.intercept.dtype)  # (batch, n_features)
        eta = _shifted(self.intercept, self.effects, c)  # (batch, n_genes)
        if self.likelihood == "gaussian":
            if self.fixed_variance:
                return Normal(eta, math.sqrt(FIXED_GAUSSIAN_VARIANCE), validate_args=False)
            return Normal(eta, torch.exp(0.5 * self.log_variance), validate_args=False)
        mu = library.unsqueeze(-1) * F.softmax(eta, dim=-1)
        theta = torch.exp(self.log_theta)
        if self.likelihood == "nb":
            return NegativeBinomial(mu, theta, validate_args=False)
        zi_logits = _shifted(self.zi_intercept, self.zi_effects, c)
        return ZeroInflatedNegativeBinomial(mu, theta, zi_logits, validate_args=False)

    def reconstruction_loss(self, x: Tensor, library: Tensor, conditions: Tensor) -> Tensor:
        """(batch,) -log p(x | library, c), nats per cell, in the VAE's convention."""
        return reconstruction_nll(self.generative(library, conditions), x, self.fixed_variance)
