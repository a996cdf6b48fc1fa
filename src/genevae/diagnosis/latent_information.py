"""How much does the latent say about the cell, and does the aggregate posterior fill the prior?

:func:`mutual_information` estimates I(x; z) under the encoder (He et al. 2019) with
the ceiling log M its estimator cannot exceed; :func:`prior_mismatch` is the rest of
the rate, KL(q(z) ‖ p(z)) = rate − I(x; z) (Hoffman & Johnson 2016). Inputs are
(n_cells, n_latent) posterior means and log-variances
(:mod:`genevae.diagnosis.posterior`); everything is in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from genevae.diagnosis.posterior import check_posterior

__all__ = [
    "MI_MAX_CELLS",
    "MI_MIN_CELLS",
    "MutualInformation",
    "mi_ceiling",
    "mutual_information",
    "prior_mismatch",
]

#: Cells used by the mutual-information estimate when more are available. Its
#: ceiling is log M (8.5 nats at 5,000), its cost M² · n_latent (1.6e9 at M = 5,000
#: and 64 dimensions: 0.4 s on two cores).
MI_MAX_CELLS = 5_000  # genevae choice
#: Fewest cells ``max_cells`` may ask for: below 2,000 the ceiling log M (7.6 nats)
#: truncates the MI of an ordinary healthy latent.
MI_MIN_CELLS = 2_000  # genevae choice
#: Rows of z scored against all M posteriors at once: bounds the (rows, M) block of
#: log-densities to 256 · 5,000 float64 = 10 MB; M x M x n_latent is never formed.
_MI_CHUNK_CELLS = 256


@dataclass(frozen=True)
class MutualInformation:
    """An estimate of I(x; z) with the ceiling the estimator cannot exceed.

    Attributes
    ----------
    value
        Estimated I(x; z), nats.
    ceiling
        log M, nats: the estimate is at most this (see :func:`mutual_information`).
    n_cells
        M, the cells used.
    """

    value: float
    ceiling: float
    n_cells: int


def mi_ceiling(n_cells: int) -> float:
    """log M: the largest I(x; z) an M-cell mixture estimate can report (nats)."""
    return math.log(n_cells)


def mutual_information(
    qz_mean: ArrayLike,
    qz_logvar: ArrayLike,
    seed: int | np.random.Generator = 0,
    max_cells: int = MI_MAX_CELLS,
) -> MutualInformation:
    """I(x; z) under the encoder, estimated as in He et al. 2019 ("Lagging Inference
    Networks and Posterior Collapse in VAEs", ICLR).

    I(x; z) = E_x[E_q(z|x) log q(z|x)] − E_q(z) log q(z), with the aggregate posterior
    q(z) replaced by the mixture over the M cells used, one sample z_j ~ q(z|x_j) per
    cell::

        log q(z_j) ≈ logsumexp_i log q(z_j|x_i) − log M
        I ≈ 1/M Σ_j [log q(z_j|x_j) − log q(z_j)]
          = log M − 1/M Σ_j log(1 + Σ_{i≠j} q(z_j|x_i) / q(z_j|x_j))

    He et al. take the first term in closed form (the negative entropy); here it is
    the same sample's log q(z_j|x_j), which shares its noise with the second term. The
    last line follows: the estimate is exactly 0 when every cell has the same
    posterior (collapse), and never above log M; it reaches log M when the posteriors
    do not overlap, whatever the true I(x; z) — see :class:`MutualInformation`.

    Parameters
    ----------
    qz_mean, qz_logvar
        (n_cells, n_latent) posterior means and log-variances.
    seed
        Seed or generator for the cell subsample and the z samples.
    max_cells
        M is ``min(n_cells, max_cells)``; at least :data:`MI_MIN_CELLS`.

    Returns
    -------
    MutualInformation
        Estimate (nats), its ceiling log M and M.

    Notes
    -----
    The (M, M) log-densities are formed :data:`_MI_CHUNK_CELLS` rows at a time from
    Σ_d (z_d − μ_d)² / σ_d² = z² · σ⁻² − 2 z · μσ⁻² + μ² · σ⁻², two matrix products
    per block; memory is O(M · (n_latent + chunk)).
    """
    if max_cells < MI_MIN_CELLS:
        raise ValueError(f"max_cells={max_cells} is below MI_MIN_CELLS={MI_MIN_CELLS}")
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    rng = np.random.default_rng(seed)
    n_cells = min(len(mean), max_cells)
    if n_cells < len(mean):
        rows = np.sort(rng.choice(len(mean), n_cells, replace=False))
        mean, logvar = mean[rows], logvar[rows]
    mean = mean - mean.mean(axis=0)  # translation-invariant; smaller numbers cancel better
    noise = rng.standard_normal(mean.shape)  # (M, n_latent)
    z = mean + np.exp(0.5 * logvar) * noise  # (M, n_latent)
    precision = np.exp(-logvar)  # (M, n_latent)
    # log q(z_j|x_i) up to −(n_latent/2) log 2π, which cancels in the difference.
    offset = -0.5 * (logvar.sum(axis=1) + (mean**2 * precision).sum(axis=1))  # (M,)
    log_own = -0.5 * (logvar.sum(axis=1) + (noise**2).sum(axis=1))  # (M,) log q(z_j|x_j)
    log_aggregate = np.empty(n_cells)  # (M,) log q(z_j)
    for start in range(0, n_cells, _MI_CHUNK_CELLS):
        block = slice(start, min(start + _MI_CHUNK_CELLS, n_cells))
        zb = z[block]  # (chunk, n_latent)
        log_q = offset + (zb**2) @ (-0.5 * precision).T + zb @ (mean * precision).T  # (chunk, M)
        own = np.arange(block.start, block.stop)
        log_q[own - start, own] = log_own[block]  # exact diagonal keeps the estimate ≤ log M
        log_aggregate[block] = logsumexp(log_q, axis=1) - math.log(n_cells)
    ceiling = mi_ceiling(n_cells)
    value = float(np.mean(log_own - log_aggregate))
    return MutualInformation(min(value, ceiling), ceiling, n_cells)  # ≤ log M up to rounding


def prior_mismatch(rate: float, mi: float) -> float:
    """KL(q(z) ‖ p(z)) = rate − I(x; z), nats (Hoffman & Johnson 2016, "ELBO surgery").

    The average KL term splits into the information the latent carries and the
    distance of the aggregate posterior q(z) from the prior:
    E_x KL(q(z|x) ‖ p(z)) = I(x; z) + KL(q(z) ‖ p(z)). ≥ 0 up to the noise of the MI
    estimate; an upper bound when the MI estimate sits at its ceiling.

    Parameters
    ----------
    rate
        Mean over cells of the KL summed over latent dimensions (nats per cell).
    mi
        I(x; z) from :func:`mutual_information` (nats).
    """
    return float(rate - mi)
