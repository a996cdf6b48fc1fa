"""The NB and ZINB reconstruction loss from decoder logits, with an analytic gradient.

The same numbers as ``-NegativeBinomial(mu, theta).log_prob(x).sum(-1)`` (and its
ZINB form) with mu = library * softmax(logits), computed in one
:class:`torch.autograd.Function` instead of a graph of ~40 elementwise autograd
nodes. Used by :meth:`genevae.model.vae.VAE.loss` for training and evaluation;
the :mod:`~genevae.model.likelihoods` distributions remain the reference (their
tests run against ``scipy.stats``) and serve sampling, means and the IWAE bound.

Per cell b and gene g, with u = log mu - log theta and q = softplus(u) = log(1 + mu/theta),

    log NB(x; mu, theta) = x u - (x + theta) q + [x > 0] (lgamma(x + theta) - lgamma(theta)
                                                            - lgamma(x + 1)).

Zero counts, 70-95% of the entries of single-cell data, need no lgamma: those terms
are computed on the non-zero entries only. The gradients (derived by hand):

    a = x - (x + theta) sigmoid(u) = (x - mu) sigmoid(-u)     (= mu * d log p / d mu)
    d log p / d logits_g = a_g - softmax_g * sum_k a_k
    d log p / d log theta = theta (D - q) - a,     D = [x > 0] (digamma(x + theta) - digamma(theta)).

ZINB with zero-inflation logits l: log p = -softplus(l) + log NB(x) for x > 0 and
-softplus(l) + logaddexp(l, log NB(0)) for x = 0. Its gradients with respect to mu
and theta are the NB ones weighted by omega = 1 for x > 0 and
omega = sigmoid(log NB(0) - l) (the posterior share of the NB zero) for x = 0; and
d log p / d l = -sigmoid(l) + [x = 0] sigmoid(l - log NB(0)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["count_reconstruction_loss"]


def _sparse_terms(
    x: Tensor, theta: Tensor, need_digamma: bool
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """lgamma terms on the non-zero counts.

    Returns the per-cell sum of lgamma(x + theta) - lgamma(theta) - lgamma(x + 1), (batch,);
    D = digamma(x + theta) - digamma(theta) per non-zero entry (or None); and the row and
    column of each non-zero entry.
    """
    rows, cols = (x > 0).nonzero(as_tuple=True)  # (n_nonzero,) each
    counts = x[rows, cols]
    theta_nz = theta[cols]
    log_terms = torch.lgamma(counts + theta_nz) - torch.lgamma(theta)[cols] - torch.lgamma(counts + 1.0)
    per_cell = torch.zeros(x.shape[0], dtype=x.dtype).index_add_(0, rows, log_terms)
    digamma_diff = None
    if need_digamma:
        digamma_diff = torch.digamma(counts + theta_nz) - torch.digamma(theta)[cols]
    return per_cell, digamma_diff, rows, cols


class _CountLoss(torch.autograd.Function):
    """-log p(x) summed over genes, (batch,) nats per cell; see the module docstring."""

    @staticmethod
    def forward(
        ctx,
        px_logits: Tensor,  # (batch, n_genes)
        log_library: Tensor,  # (batch,)
        px_log_theta: Tensor,  # (n_genes,)
        zi_logits: Tensor | None,  # (batch, n_genes) or None for NB
        x: Tensor,  # (batch, n_genes) counts
    ) -> Tensor:
        need_grad = any(ctx.needs_input_grad[:4])
        theta = px_log_theta.exp()  # (n_genes,)
        log_scale = F.log_softmax(px_logits, dim=-1)  # log px_scale
        u = log_scale + (log_library.unsqueeze(-1) - px_log_theta)  # log(mu / theta)
        q = F.softplus(u)  # log(1 + mu / theta)
        x_plus_theta = x + theta
        lgamma_terms, digamma_diff, rows, cols = _sparse_terms(x, theta, need_grad)
        theta_q = theta * q  # -log NB(0)
        if zi_logits is None:
            log_p = (x * u).sum(-1) - (x_plus_theta * q).sum(-1) + lgamma_terms
        else:
            nonzero = x > 0
            log_nb = x * u - x_plus_theta * q  # without the lgamma terms (0 where x = 0)
            log_zero = torch.logaddexp(zi_logits, -theta_q)
            log_p = (torch.where(nonzero, log_nb, log_zero) - F.softplus(zi_logits)).sum(-1)
            log_p = log_p + lgamma_terms
        if not need_grad:
            return -log_p
        # Gradients of -log p, per entry; the backward only scales them by the upstream.
        scale = log_scale.exp()  # softmax, px_scale
        mu = scale * log_library.exp().unsqueeze(-1)
        a = (x - mu) * torch.sigmoid(-u)  # mu * d log NB / d mu = x - (x + theta) mu / (theta + mu)
        grad_zi = None
        if zi_logits is not None:
            zi_prob = torch.sigmoid(zi_logits)
            nb_zero_share = torch.sigmoid(-theta_q - zi_logits)  # omega at x = 0
            omega = torch.where(nonzero, 1.0, nb_zero_share)
            grad_zi = torch.where(nonzero, zi_prob, zi_prob - (1.0 - nb_zero_share))
            a = a * omega
            theta_q = theta_q * omega
        a_sum = a.sum(-1)  # (batch,)
        grad_logits = scale * a_sum.unsqueeze(-1) - a  # (batch, n_genes)
        grad_theta_dense = a + theta_q  # the digamma part is added in backward, sparse
        ctx.save_for_backward(grad_logits, grad_theta_dense, grad_zi, theta, digamma_diff,
                              rows, cols, a_sum)
        ctx.is_zinb = zi_logits is not None
        return -log_p

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grad_logits, grad_theta_dense, grad_zi, theta, digamma_diff, rows, cols, a_sum = (
            ctx.saved_tensors
        )
        w = grad_out.unsqueeze(-1)  # (batch, 1)
        needs = ctx.needs_input_grad
        g_logits = grad_logits * w if needs[0] else None
        # d(-log p)/d log library: -sum_g a_g (mu enters only through library * softmax).
        g_library = -(a_sum * grad_out) if needs[1] else None
        g_theta = None
        if needs[2]:
            g_theta = grad_out @ grad_theta_dense  # (n_genes,)
            weighted = grad_out[rows] * digamma_diff
            g_theta = g_theta - theta * torch.zeros_like(theta).index_add_(0, cols, weighted)
        g_zi = grad_zi * w if ctx.is_zinb and needs[3] else None
        return g_logits, g_library, g_theta, g_zi, None


def count_reconstruction_loss(
    px_logits: Tensor,
    library: Tensor,
    px_log_theta: Tensor,
    x: Tensor,
    zi_logits: Tensor | None = None,
) -> Tensor:
    """-log NB(x; mu, theta) (or ZINB) summed over genes: (batch,) nats per cell.

    Parameters
    ----------
    px_logits
        (batch, n_genes) decoder logits; mu = library * softmax(px_logits).
    library
        (batch,) total counts per cell; 0 is floored at the smallest normal float, as
        :class:`~genevae.model.likelihoods.NegativeBinomial` floors mu.
    px_log_theta
        (n_genes,) log inverse dispersion.
    x
        (batch, n_genes) counts (no gradient).
    zi_logits
        (batch, n_genes) zero-inflation logits for ZINB; None for NB.

    Returns
    -------
    Tensor
        (batch,) the exact negative log-likelihood, lgamma(x + 1) included, equal to
        the :mod:`~genevae.model.likelihoods` value; differentiable in the logits,
        the library, log theta and the zero-inflation logits.
    """
    log_library = torch.log(library.clamp_min(torch.finfo(library.dtype).tiny))
    return _CountLoss.apply(px_logits, log_library, px_log_theta, zi_logits, x.detach())
