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

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["count_reconstruction_loss", "SMALL_COUNT_TABLE"]

#: Integer counts below this take their lgamma and digamma differences from per-gene
#: tables built from theta at each call (cumulative sums of log((theta + j) / (j + 1))
#: and 1 / (theta + j)); larger or non-integer counts call lgamma and digamma.
#: genevae choice: covers almost every non-zero UMI count for 128 cumulative terms per gene.
SMALL_COUNT_TABLE = 32


class _NonZero(NamedTuple):
    """The non-zero entries of a (batch, n_genes) count matrix, in row-major order."""

    rows: Tensor  # (n_nonzero,) cell
    cols: Tensor  # (n_nonzero,) gene
    counts: Tensor  # (n_nonzero,) value
    flat: Tensor  # (n_nonzero,) position in the flattened matrix


def _nonzero(x: Tensor) -> _NonZero:
    mask = (x > 0).reshape(-1)
    if mask.device.type == "cpu":  # numpy's flatnonzero is ~10x faster than torch.nonzero here
        flat = torch.from_numpy(np.flatnonzero(mask.numpy()))
    else:
        flat = mask.nonzero().squeeze(-1)
    n_genes = x.shape[-1]
    rows = torch.div(flat, n_genes, rounding_mode="floor")
    return _NonZero(rows, flat - rows * n_genes, x.reshape(-1).index_select(0, flat), flat)


def _log_gamma_terms(
    nonzero: _NonZero, theta: Tensor, need_digamma: bool
) -> tuple[Tensor, Tensor | None]:
    """Per non-zero entry: lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) and, when
    asked, digamma(x + theta) - digamma(theta); each (n_nonzero,).

    For an integer x < :data:`SMALL_COUNT_TABLE` these are sum_{j<x} log((theta + j) / (j + 1))
    and sum_{j<x} 1 / (theta + j), read from per-gene tables of cumulative sums (in float64);
    other counts use lgamma and digamma directly.
    """
    counts, cols = nonzero.counts, nonzero.cols
    steps = torch.arange(SMALL_COUNT_TABLE - 1, dtype=torch.float64)  # j
    theta_j = theta.detach().double().unsqueeze(-1) + steps  # (n_genes, table - 1)

    def table(increments: Tensor) -> Tensor:  # (n_genes, table) cumulative sums from 0
        cumulative = torch.nn.functional.pad(increments.cumsum(-1), (1, 0))
        return cumulative.to(theta.dtype).reshape(-1)

    small = counts.clamp(max=SMALL_COUNT_TABLE - 1).floor()
    index = cols * SMALL_COUNT_TABLE + small.long()
    log_terms = table(theta_j.log() - steps.log1p()).index_select(0, index)
    digamma_diff = table(theta_j.reciprocal()).index_select(0, index) if need_digamma else None
    other = torch.from_numpy(np.flatnonzero((small != counts).numpy()))  # large or non-integer
    if other.numel():
        x_other, theta_other = counts[other], theta[cols[other]]
        log_terms[other] = (torch.lgamma(x_other + theta_other) - torch.lgamma(theta_other)
                            - torch.lgamma(x_other + 1.0))
        if digamma_diff is not None:
            digamma_diff[other] = torch.digamma(x_other + theta_other) - torch.digamma(theta_other)
    return log_terms, digamma_diff


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
        # u = log(mu / theta) = log px_scale + log library - log theta; in place: each
        # (batch, n_genes) operation costs a pass over memory, and a thread barrier.
        u = F.log_softmax(px_logits, dim=-1).add_(log_library.unsqueeze(-1)).sub_(px_log_theta)
        q = F.softplus(u)  # log(1 + mu / theta)
        # sum_g x u - (x + theta) q = sum_g x (u - q) - theta q, plus the lgamma terms
        log_p = torch.linalg.vecdot(x, u - q)
        theta_q = q.mul_(theta)  # -log NB(0); q itself is not needed again
        log_p -= theta_q.sum(-1)
        nonzero = _nonzero(x)
        log_terms, digamma_diff = _log_gamma_terms(nonzero, theta, need_grad)
        log_p.index_add_(0, nonzero.rows, log_terms)
        if zi_logits is not None:
            # log p = -softplus(l) + log NB(x) for x > 0; -softplus(l) + logaddexp(l, -theta q)
            # for x = 0, where log NB(0) = -theta q is already in the sum above.
            is_zero = torch.ones_like(x).view(-1).index_fill_(0, nonzero.flat, 0.0).view(x.shape)
            log_zero = torch.logaddexp(zi_logits, -theta_q).add_(theta_q)
            log_p += torch.linalg.vecdot(is_zero, log_zero) - F.softplus(zi_logits).sum(-1)
        if not need_grad:
            return -log_p
        # Gradients of -log p, per entry; the backward only scales them by the upstream.
        scale = F.softmax(px_logits, dim=-1)  # px_scale
        # a = mu d log NB / d mu = x - (x + theta) mu / (theta + mu) = (x - mu) sigmoid(-u)
        a = torch.sigmoid(u.neg_()).mul_(x - scale * log_library.exp().unsqueeze(-1))
        grad_zi = None
        if zi_logits is not None:
            nb_zero_weight = torch.sigmoid(zi_logits + theta_q).mul_(is_zero)  # 1 - omega
            grad_zi = torch.sigmoid(zi_logits).sub_(nb_zero_weight)
            omega = nb_zero_weight.neg_().add_(1.0)
            a.mul_(omega)
            theta_q.mul_(omega)
        a_sum = a.sum(-1)  # (batch,)
        grad_logits = scale.mul_(a_sum.unsqueeze(-1)).sub_(a)  # softmax * sum(a) - a
        # d(-log p) / d log theta = a + theta q - theta D (times omega for ZINB; D = 0 at
        # zeros): the dense part here, theta D per non-zero entry for the backward.
        grad_log_theta = a.add_(theta_q)
        theta_digamma = theta[nonzero.cols] * digamma_diff
        ctx.save_for_backward(grad_logits, grad_log_theta, grad_zi, a_sum, theta_digamma,
                              nonzero.rows, nonzero.cols)
        ctx.is_zinb = zi_logits is not None
        return -log_p

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grad_logits, grad_log_theta, grad_zi, a_sum, theta_digamma, rows, cols = (
            ctx.saved_tensors
        )
        w = grad_out.unsqueeze(-1)  # (batch, 1)
        needs = ctx.needs_input_grad
        g_logits = grad_logits * w if needs[0] else None
        # d(-log p)/d log library = -sum_g a_g (mu enters only through library * softmax).
        g_library = -(a_sum * grad_out) if needs[1] else None
        g_theta = None
        if needs[2]:  # (n_genes,): the dense part, less the digamma part of the non-zeros
            sparse = torch.zeros_like(grad_log_theta[0]).index_add_(
                0, cols, grad_out[rows] * theta_digamma)
            g_theta = grad_out @ grad_log_theta - sparse
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
