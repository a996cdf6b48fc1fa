"""The conditional VAE: encoder q(z | x, c), decoder p(x | z, c) and the beta-ELBO.

This file is where the objective lives. The model never sees the epoch: the
trainer computes the KL weight beta from its schedule and passes it to
:meth:`VAE.loss`, which returns every component in a :class:`LossOutput`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Normal

from genevae.config import ModelConfig
from genevae.model.count_loss import count_reconstruction_loss
from genevae.model.kl import kl_normal_standard
from genevae.model.likelihoods import (
    FIXED_GAUSSIAN_VARIANCE,
    NegativeBinomial,
    ZeroInflatedNegativeBinomial,
)
from genevae.model.networks import MLP, ConditionEncoder, Linear

__all__ = ["VAE", "LossOutput", "LOSS_REDUCTIONS", "QZ_LOGVAR_RANGE", "reconstruction_nll"]

LOSS_REDUCTIONS = ("sum", "mean")
#: Encoder log-variances are clamped to this range only so that exp() stays finite
#: (sigma from 3e-7 to 2.2e4); a healthy posterior sits far inside it.
QZ_LOGVAR_RANGE = (-30.0, 20.0)


def reconstruction_nll(p_x: Distribution, x: Tensor, fixed_variance: bool) -> Tensor:
    """-log p(x | ...) summed over genes: (batch,) nats per cell.

    For the fixed-variance Gaussian this is the summed squared error
    sum_g (x_g - mu_g)^2, the exact NLL less its constant 1/2 log(pi) per gene
    (see :mod:`genevae.model.likelihoods`). lgamma(x + 1) of the count likelihoods
    is kept, so the value is a true NLL in nats.
    """
    if fixed_variance:
        return ((x - p_x.mean) ** 2).sum(dim=-1)
    return -p_x.log_prob(x).sum(dim=-1)


@dataclass
class LossOutput:
    """Every component of the beta-ELBO for one mini-batch.

    Attributes
    ----------
    objective
        Scalar the optimiser minimises (see :meth:`VAE.loss` for both reductions).
    reconstruction_loss
        (batch,) -log p(x | z) summed over genes, nats per cell; for the fixed-variance
        Gaussian the summed squared error (that NLL less 1/2 log(pi) per gene).
    kl_local
        (batch,) KL(q(z | x) || p(z)) summed over latent dimensions, nats per cell,
        never clamped by free bits.
    kl_per_dim
        (batch, n_latent) KL per latent dimension, nats.
    kl_weight
        The beta the objective used.
    qz_mean, qz_logvar
        (batch, n_latent) posterior means and log-variances.
    """

    objective: Tensor
    reconstruction_loss: Tensor
    kl_local: Tensor
    kl_per_dim: Tensor
    kl_weight: float
    qz_mean: Tensor
    qz_logvar: Tensor


class VAE(nn.Module):
    """Conditional VAE for gene expression with an NB, ZINB or Gaussian decoder.

    Encoder: [log1p(x / library * target_sum), c] -> MLP -> (qz_mean, qz_logvar) for counts;
    [x, c] for the Gaussian (x is already standardised). Decoder: [z, c] -> MLP ->

    - ``nb``: px_scale = softmax over genes, mu = library * px_scale, theta = exp(log_theta)
      per gene (learned);
    - ``zinb``: the same, plus per cell-and-gene zero-inflation logits from their own head;
    - ``gaussian``: loc from a linear head; scale = exp(1/2 log_variance) per gene
      (``gaussian_variance="learned"``) or sqrt(FIXED_GAUSSIAN_VARIANCE) (``"fixed"``).

    c are the condition features (one-hot or learned embeddings) of the condition codes.
    Dropout and batch normalisation, when configured, act in the hidden layers of both
    the encoder and the decoder (the decoder's dropout rate can differ: ``decoder_dropout``).

    Parameters
    ----------
    n_genes
        Number of modelled genes.
    n_categories
        Categories per condition key; empty for an unconditional VAE.
    config
        Architecture and likelihood.
    target_sum
        Counts per cell after library-size normalisation of the encoder input.

    Attributes
    ----------
    n_genes, n_categories, n_latent, likelihood, target_sum
        What the model was built with (enough, with the config, to rebuild it).

    Notes
    -----
    Inputs shared by the methods: ``x`` (batch, n_genes) float, raw counts for nb/zinb
    and standardised values for gaussian; ``library`` (batch,) float, total counts
    per cell over the modelled genes (ignored by the Gaussian); ``conditions``
    (batch, n_keys) int64 codes, n_keys may be 0.
    """

    def __init__(
        self,
        n_genes: int,
        n_categories: Sequence[int],
        config: ModelConfig,
        target_sum: float = 1e4,
    ) -> None:
        super().__init__()
        if n_genes < 1:
            raise ValueError(f"n_genes={n_genes}: the model needs at least 1 gene.")
        if not target_sum > 0:
            raise ValueError(f"target_sum={target_sum}: must be > 0, e.g. 1e4.")
        self.n_genes = n_genes
        self.n_categories = tuple(int(n) for n in n_categories)
        self.n_latent = config.n_latent
        self.likelihood = config.likelihood
        self.fixed_variance = (
            config.likelihood == "gaussian" and config.gaussian_variance == "fixed"
        )
        self.target_sum = float(target_sum)

        self.condition_encoder = ConditionEncoder(n_categories, config.condition_encoding)
        n_condition_features = self.condition_encoder.n_output
        hidden = {
            "n_hidden": config.n_hidden,
            "n_layers": config.n_layers,
            "dropout": config.dropout,
            "batch_norm": config.batch_norm,
        }
        self.encoder = MLP(n_genes + n_condition_features, **hidden)
        self.qz_mean_head = nn.Linear(config.n_hidden, config.n_latent)
        self.qz_logvar_head = nn.Linear(config.n_hidden, config.n_latent)
        decoder_dropout = config.dropout if config.decoder_dropout is None else config.decoder_dropout
        self.decoder = MLP(config.n_latent + n_condition_features,
                           **{**hidden, "dropout": decoder_dropout})

        if config.likelihood == "gaussian":
            self.px_loc_head = Linear(config.n_hidden, n_genes)
            if not self.fixed_variance:
                self.px_log_variance = nn.Parameter(torch.zeros(n_genes))  # (n_genes,)
        else:
            self.px_scale_head = Linear(config.n_hidden, n_genes)  # logits of px_scale
            self.px_log_theta = nn.Parameter(torch.zeros(n_genes))  # (n_genes,), theta = 1
            if config.likelihood == "zinb":
                self.px_zi_logits_head = Linear(config.n_hidden, n_genes)

    # -- building blocks (condition features computed once per call) ---------------

    def _condition_features(self, conditions: Tensor) -> Tensor:
        return self.condition_encoder(conditions, dtype=self.qz_mean_head.weight.dtype)

    def _encode(self, x: Tensor, library: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        if self.likelihood == "gaussian":
            x_in = x  # (batch, n_genes), standardised
        else:
            # An empty cell (library 0) has x = 0: its factor is set to 0, so 0 * inf is not nan.
            factor = (self.target_sum / library).nan_to_num(posinf=0.0)  # (batch,)
            x_in = torch.log1p(x * factor.unsqueeze(-1))  # (batch, n_genes)
        h = self.encoder(torch.cat([x_in, c], dim=-1) if c.shape[-1] else x_in)  # (batch, n_hidden)
        qz_mean = self.qz_mean_head(h)  # (batch, n_latent)
        qz_logvar = self.qz_logvar_head(h).clamp(*QZ_LOGVAR_RANGE)  # (batch, n_latent)
        return qz_mean, qz_logvar

    def _decode_hidden(self, z: Tensor, c: Tensor) -> Tensor:
        # z may carry leading sample dimensions: (..., batch, n_latent).
        zc = torch.cat([z, c.expand(*z.shape[:-1], c.shape[-1])], dim=-1)
        return self.decoder(zc.flatten(0, -2)).unflatten(0, zc.shape[:-1])  # (..., batch, n_hidden)

    def _generative(self, z: Tensor, library: Tensor, c: Tensor) -> Distribution:
        h = self._decode_hidden(z, c)  # (..., batch, n_hidden)
        if self.likelihood == "gaussian":
            loc = self.px_loc_head(h)  # (..., batch, n_genes)
            if self.fixed_variance:
                return Normal(loc, math.sqrt(FIXED_GAUSSIAN_VARIANCE), validate_args=False)
            return Normal(loc, torch.exp(0.5 * self.px_log_variance), validate_args=False)
        px_scale = F.softmax(self.px_scale_head(h), dim=-1)  # (..., batch, n_genes)
        mu = library.unsqueeze(-1) * px_scale  # (..., batch, n_genes)
        theta = torch.exp(self.px_log_theta)  # (n_genes,)
        if self.likelihood == "nb":
            return NegativeBinomial(mu, theta, validate_args=False)
        zi_logits = self.px_zi_logits_head(h)  # (..., batch, n_genes)
        return ZeroInflatedNegativeBinomial(mu, theta, zi_logits, validate_args=False)

    def _reconstruction_loss(self, z: Tensor, library: Tensor, c: Tensor, x: Tensor) -> Tensor:
        """-log p(x | z, c) summed over genes, (batch,) nats per cell.

        Counts go through :func:`~genevae.model.count_loss.count_reconstruction_loss`
        (the same value as the distribution's ``log_prob``, with an analytic gradient).
        """
        if self.likelihood == "gaussian":
            return self.reconstruction_loss(self._generative(z, library, c), x)
        h = self._decode_hidden(z, c)  # (batch, n_hidden)
        zi_logits = self.px_zi_logits_head(h) if self.likelihood == "zinb" else None
        return count_reconstruction_loss(
            self.px_scale_head(h), library, self.px_log_theta, x, zi_logits
        )

    @staticmethod
    def _sample_z(qz_mean: Tensor, qz_logvar: Tensor) -> Tensor:
        """Reparameterised z = mu + sigma * eps, eps ~ N(0, I); (batch, n_latent)."""
        return qz_mean + torch.exp(0.5 * qz_logvar) * torch.randn_like(qz_mean)

    # -- public API ---------------------------------------------------------------

    def encode(self, x: Tensor, library: Tensor, conditions: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior q(z | x, c) = N(qz_mean, exp(qz_logvar)).

        Returns
        -------
        tuple of Tensor
            ``(qz_mean, qz_logvar)``, each (batch, n_latent); the log-variance is clamped
            to :data:`QZ_LOGVAR_RANGE`. Deterministic in eval mode.
        """
        return self._encode(x, library, self._condition_features(conditions))

    def generative(self, z: Tensor, library: Tensor, conditions: Tensor) -> Distribution:
        """Observation model p(x | z, c) over (batch, n_genes).

        Parameters
        ----------
        z
            (batch, n_latent) latent codes; leading sample dimensions are allowed,
            (..., batch, n_latent), giving a distribution over (..., batch, n_genes).
        library, conditions
            As in the class notes.
        """
        return self._generative(z, library, self._condition_features(conditions))

    def reconstruction_loss(self, p_x: Distribution, x: Tensor) -> Tensor:
        """-log p(x | z) summed over genes: (batch,) nats per cell (:func:`reconstruction_nll`)."""
        return reconstruction_nll(p_x, x, self.fixed_variance)

    def loss(
        self,
        x: Tensor,
        library: Tensor,
        conditions: Tensor,
        kl_weight: float,
        free_bits: float = 0.0,
        reduction: str = "sum",
    ) -> LossOutput:
        """The beta-ELBO objective and its parts for one mini-batch.

        z is drawn from q(z | x, c) by reparameterisation in both training and eval
        mode: the ELBO is an expectation over z, so its one-sample estimate is
        stochastic even when the networks are deterministic.

        With recon_b the reconstruction loss of cell b, kl_bj the KL of cell b in
        latent dimension j and kl_j = mean_b kl_bj, the penalised KL per dimension is
        max(free_bits, kl_j) (free bits, Kingma et al. 2016: below the floor the
        objective carries no gradient from that dimension's KL). Then

        - ``"sum"`` (the per-cell ELBO, nats per cell):
          objective = mean_b recon_b + beta * sum_j max(free_bits, kl_j);
        - ``"mean"`` (the reference document's convention):
          objective = mean_b recon_b / n_genes + beta * sum_j max(free_bits, kl_j) / n_latent.
          The reference run's recon is the MSE averaged over samples and genes, its kl
          averaged over samples and latent dimensions, loss = recon + 0.5 kl. Relative
          to the per-cell ELBO this multiplies beta by n_genes / n_latent.

        Parameters
        ----------
        x, library, conditions
            As in the class notes.
        kl_weight
            beta, computed by the trainer's schedule.
        free_bits
            Floor on the batch-mean KL of each latent dimension, nats (>= 0).
        reduction
            ``"sum"`` or ``"mean"``, as above.
        """
        if reduction not in LOSS_REDUCTIONS:
            raise ValueError(
                f"reduction={reduction!r}: choose one of {', '.join(LOSS_REDUCTIONS)}."
            )
        if free_bits < 0:
            raise ValueError(f"free_bits={free_bits}: must be >= 0 nats per latent dimension.")
        c = self._condition_features(conditions)  # (batch, n_condition_features)
        qz_mean, qz_logvar = self._encode(x, library, c)
        z = self._sample_z(qz_mean, qz_logvar)  # (batch, n_latent)
        reconstruction_loss = self._reconstruction_loss(z, library, c, x)  # (batch,)
        kl_per_dim = kl_normal_standard(qz_mean, qz_logvar)  # (batch, n_latent)
        kl_penalised = kl_per_dim.mean(dim=0).clamp_min(free_bits)  # (n_latent,)
        if reduction == "sum":
            objective = reconstruction_loss.mean() + kl_weight * kl_penalised.sum()
        else:
            objective = reconstruction_loss.mean() / self.n_genes + kl_weight * kl_penalised.mean()
        return LossOutput(
            objective=objective,
            reconstruction_loss=reconstruction_loss,
            kl_local=kl_per_dim.sum(dim=-1),
            kl_per_dim=kl_per_dim,
            kl_weight=kl_weight,
            qz_mean=qz_mean,
            qz_logvar=qz_logvar,
        )

    forward = loss

    def importance_weighted_log_likelihood(
        self, x: Tensor, library: Tensor, conditions: Tensor, n_importance: int = 100
    ) -> Tensor:
        """Importance-weighted lower bound on log p(x | c) (Burda et al. 2015).

        log p(x) >= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),  z_k ~ q(z | x),

        tighter than the ELBO for K > 1 and equal to it in expectation for K = 1. Uses
        the exact log-likelihood: for the fixed-variance Gaussian the full
        Normal(mu, sqrt(1/2)) density, constant included, so the value is comparable
        across likelihoods. Call in eval mode under ``torch.no_grad()`` for evaluation;
        memory grows as n_importance * batch * n_genes.

        Returns
        -------
        Tensor
            (batch,) bound in nats per cell.
        """
        if n_importance < 1:
            raise ValueError(f"n_importance={n_importance}: use at least 1 importance sample.")
        c = self._condition_features(conditions)
        qz_mean, qz_logvar = self._encode(x, library, c)
        q_z = Normal(qz_mean, torch.exp(0.5 * qz_logvar), validate_args=False)
        p_z = Normal(torch.zeros_like(qz_mean), torch.ones_like(qz_mean), validate_args=False)
        z = q_z.rsample((n_importance,))  # (n_importance, batch, n_latent)
        p_x = self._generative(z, library, c)  # over (n_importance, batch, n_genes)
        log_px_z = p_x.log_prob(x).sum(dim=-1)  # (n_importance, batch)
        log_weights = log_px_z + (p_z.log_prob(z) - q_z.log_prob(z)).sum(dim=-1)
        return torch.logsumexp(log_weights, dim=0) - math.log(n_importance)

    def decode_mean(self, z: Tensor, library: Tensor, conditions: Tensor) -> Tensor:
        """Expected expression E[x | z, c]: (batch, n_genes).

        mu = library * px_scale for nb, (1 - pi) mu for zinb, loc for the Gaussian.
        """
        return self.generative(z, library, conditions).mean
