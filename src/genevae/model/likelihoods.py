"""Observation models p(x | z): count likelihoods and the Gaussian convention.

Counts (raw UMI or read counts) use the negative binomial (NB) or its
zero-inflated form (ZINB), each a :class:`torch.distributions.Distribution`, so
``log_prob``, ``mean``, ``variance`` and ``sample`` mean what they mean everywhere
in PyTorch. Standardised values use :class:`torch.distributions.Normal` itself.

The fixed-variance Gaussian
---------------------------
The reference run's reconstruction loss is the squared error. That is the negative
log-likelihood of N(mu, sigma^2) with sigma^2 = :data:`FIXED_GAUSSIAN_VARIANCE` = 1/2,
up to a constant: per gene,

    -log N(x; mu, 1/2) = (x - mu)^2 + 1/2 log(pi).

genevae reports the fixed-variance reconstruction loss as the summed squared
error, i.e. that NLL less its constant 1/2 log(pi) per gene; the gradients are
identical. Where an exact log-likelihood is needed (the importance-weighted bound)
the full ``Normal(mu, sqrt(1/2))`` density is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, Gamma, Poisson, constraints

__all__ = ["NegativeBinomial", "ZeroInflatedNegativeBinomial", "FIXED_GAUSSIAN_VARIANCE"]

#: Variance of the fixed Gaussian likelihood: N(mu, 1/2) has NLL (x - mu)^2 + 1/2 log(pi)
#: per gene, so its reconstruction loss is the squared error (the reference's MSE).
FIXED_GAUSSIAN_VARIANCE = 0.5


def _log_mean(mu: Tensor) -> Tensor:
    """log(mu), with mu floored at the smallest normal float of its dtype.

    A softmax over many genes can underflow to exactly 0 in float32; the floor keeps
    ``0 * log(mu)`` finite for a zero count instead of ``0 * -inf = nan``.
    """
    return torch.log(mu.clamp_min(torch.finfo(mu.dtype).tiny))


def _nb_log_prob(x: Tensor, mu: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise log NB(x; mu, theta) and log NB(0; mu, theta), in nats.

    log p(x) = lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
               + theta * log(theta / (theta + mu)) + x * log(mu / (theta + mu)),

    with log(theta / (theta + mu)) = -softplus(log mu - log theta) and
    log(mu / (theta + mu)) = -softplus(log theta - log mu), which stay accurate when
    theta >> mu (the Poisson limit) or mu >> theta. The second output,
    log p(0) = theta * log(theta / (theta + mu)), is a term of the first.
    """
    log_ratio = _log_mean(mu) - torch.log(theta)  # log(mu / theta)
    log_p_zero = -theta * F.softplus(log_ratio)
    log_p = (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1.0)  # a constant of the data; x carries no gradient
        + log_p_zero
        - x * F.softplus(-log_ratio)
    )
    return log_p, log_p_zero


class NegativeBinomial(Distribution):
    """Negative binomial counts parametrised by mean and inverse dispersion.

    A Gamma-Poisson mixture: lambda ~ Gamma(shape=theta, rate=theta / mu),
    x ~ Poisson(lambda). E[x] = mu, Var[x] = mu + mu^2 / theta. theta -> inf gives
    the Poisson; the scipy equivalent is ``nbinom(n=theta, p=theta / (theta + mu))``.

    Parameters
    ----------
    mu
        Mean count, > 0, any shape (e.g. (batch, n_genes)).
    theta
        Inverse dispersion, > 0, broadcastable to ``mu`` (e.g. (n_genes,)).
    validate_args
        Check parameters and values against ``arg_constraints`` and ``support``
        (PyTorch's default: on unless Python runs with ``-O``). The VAE passes
        ``False`` in its training loop to skip the per-batch checks.
    """

    arg_constraints = {"mu": constraints.positive, "theta": constraints.positive}
    support = constraints.nonnegative_integer

    def __init__(self, mu: Tensor, theta: Tensor, validate_args: bool | None = None) -> None:
        # Parameters keep their own shapes (theta is typically (n_genes,)), so per-gene
        # terms such as lgamma(theta) cost n_genes evaluations, not batch * n_genes.
        self.mu, self.theta = torch.as_tensor(mu), torch.as_tensor(theta)
        batch_shape = torch.broadcast_shapes(self.mu.shape, self.theta.shape)
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.mu.expand(self.batch_shape)

    @property
    def variance(self) -> Tensor:
        return (self.mu + self.mu**2 / self.theta).expand(self.batch_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(value) in nats, elementwise (shape of the broadcast of value and mu)."""
        if self._validate_args:
            self._validate_sample(value)
        return _nb_log_prob(value, self.mu, self.theta)[0]

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        """Gamma-Poisson draws of shape ``sample_shape + batch_shape`` (no gradient)."""
        with torch.no_grad():
            shape = self._extended_shape(sample_shape)
            theta, mu = self.theta.expand(shape), self.mu.expand(shape)
            rate = Gamma(theta, theta / mu, validate_args=False).sample()
            return Poisson(rate, validate_args=False).sample()


class ZeroInflatedNegativeBinomial(Distribution):
    """Negative binomial with extra structural zeros.

    With pi = sigmoid(zi_logits) the probability of a structural zero,

        log p(0)     = log(pi + (1 - pi) NB(0; mu, theta)),
        log p(x > 0) = log(1 - pi) + log NB(x; mu, theta),

    computed as ``logaddexp(-softplus(-l), -softplus(l) + log NB(0))`` and
    ``-softplus(l) + log NB(x)`` for logits l. E[x] = (1 - pi) mu and
    Var[x] = (1 - pi)(mu + mu^2 / theta) + pi (1 - pi) mu^2.

    Parameters
    ----------
    mu, theta
        Mean and inverse dispersion of the NB component, as in :class:`NegativeBinomial`.
    zi_logits
        Logits of the structural-zero probability pi, broadcastable to ``mu``.
    validate_args
        As in :class:`NegativeBinomial`.
    """

    arg_constraints = {
        "mu": constraints.positive,
        "theta": constraints.positive,
        "zi_logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(
        self, mu: Tensor, theta: Tensor, zi_logits: Tensor, validate_args: bool | None = None
    ) -> None:
        # Parameters keep their own shapes, as in NegativeBinomial.
        self.mu, self.theta = torch.as_tensor(mu), torch.as_tensor(theta)
        self.zi_logits = torch.as_tensor(zi_logits)
        shapes = (self.mu.shape, self.theta.shape, self.zi_logits.shape)
        super().__init__(torch.broadcast_shapes(*shapes), validate_args=validate_args)

    @property
    def zi_probs(self) -> Tensor:
        """pi = sigmoid(zi_logits): probability of a structural zero."""
        return torch.sigmoid(self.zi_logits)

    @property
    def mean(self) -> Tensor:
        return ((1.0 - self.zi_probs) * self.mu).expand(self.batch_shape)

    @property
    def variance(self) -> Tensor:
        pi = self.zi_probs
        return (1.0 - pi) * (self.mu + self.mu**2 / self.theta) + pi * (1.0 - pi) * self.mu**2

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(value) in nats, elementwise."""
        if self._validate_args:
            self._validate_sample(value)
        log_not_zi = -F.softplus(self.zi_logits)  # log(1 - pi)
        log_zi = -F.softplus(-self.zi_logits)  # log(pi)
        log_nb, log_nb_zero = _nb_log_prob(value, self.mu, self.theta)
        log_p_zero = torch.logaddexp(log_zi, log_not_zi + log_nb_zero)
        return torch.where(value == 0, log_p_zero, log_not_zi + log_nb)

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        """Draws of shape ``sample_shape + batch_shape`` (no gradient)."""
        with torch.no_grad():
            shape = self._extended_shape(sample_shape)
            mu = self.mu.expand(self.batch_shape)
            counts = NegativeBinomial(mu, self.theta, validate_args=False).sample(sample_shape)
            uniform = torch.rand(shape, dtype=self.mu.dtype, device=self.mu.device)
            structural_zero = uniform < self.zi_probs.expand(shape)
            return counts.masked_fill(structural_zero, 0.0)
