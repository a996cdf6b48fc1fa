"""Is each latent dimension used, and how many directions carry information?

- :func:`kl_per_dim` and :func:`kl_per_dim_summary`: KL(q(z_j|x) ‖ N(0, 1)) of every
  cell and dimension, and its distribution over cells;
- :func:`posterior_mean_variance` and :func:`active_units`: dimensions whose posterior
  mean varies over cells (Burda et al. 2015);
- :func:`informative_directions`: the rotation-invariant count (a latent that spreads
  20 factors over 64 axes has 64 active units but 20 informative directions).

Inputs are (n_cells, n_latent) posterior means and log-variances
(:mod:`genevae.diagnosis.posterior`); KL is in nats per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.diagnosis.posterior import check_posterior

__all__ = [
    "KL_QUANTILES",
    "kl_per_dim",
    "KLSummary",
    "kl_per_dim_summary",
    "posterior_mean_variance",
    "active_units",
    "INFORMATIVE_DIRECTION_SNR",
    "informative_directions",
]

#: Quantiles over cells reported for each dimension's KL distribution.
KL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # genevae choice: median, quartiles, 90% range


def kl_per_dim(qz_mean: ArrayLike, qz_logvar: ArrayLike) -> np.ndarray:
    """KL(q(z_j|x) ‖ N(0, 1)) of every cell and latent dimension.

    KL_ij = ½ (μ_ij² + σ_ij² − 1 − log σ_ij²)  (Kingma & Welling 2014, app. B), in
    numpy: the formula of the model's :func:`genevae.model.kl.kl_normal_standard`, which
    the diagnosis does not import (it never touches torch or the model; the tests hold
    the two equal).

    Parameters
    ----------
    qz_mean, qz_logvar
        (n_cells, n_latent) posterior means μ and log-variances log σ².

    Returns
    -------
    np.ndarray
        (n_cells, n_latent) KL in nats, ≥ 0; 0 where the posterior equals the prior.
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    return 0.5 * (mean**2 + np.exp(logvar) - 1.0 - logvar)


@dataclass(frozen=True)
class KLSummary:
    """Distribution over cells of each latent dimension's KL.

    Attributes
    ----------
    mean
        (n_latent,) mean over cells of KL_ij, nats per cell.
    levels
        The quantile levels, :data:`KL_QUANTILES` by default.
    quantiles
        (n_levels, n_latent) quantiles over cells of KL_ij, nats.
    """

    mean: np.ndarray
    levels: tuple[float, ...]
    quantiles: np.ndarray

    @property
    def rate(self) -> float:
        """Mean over cells of the KL summed over dimensions (nats per cell)."""
        return float(self.mean.sum())


def kl_per_dim_summary(
    qz_mean: ArrayLike, qz_logvar: ArrayLike, levels: Sequence[float] = KL_QUANTILES
) -> KLSummary:
    """Mean and quantiles over cells of :func:`kl_per_dim`, per latent dimension."""
    kl = kl_per_dim(qz_mean, qz_logvar)  # (n_cells, n_latent)
    levels = tuple(float(q) for q in levels)
    return KLSummary(kl.mean(axis=0), levels, np.quantile(kl, levels, axis=0))


def posterior_mean_variance(qz_mean: ArrayLike) -> np.ndarray:
    """Variance over cells of each dimension's posterior mean, A_j = Var_x(E_q[z_j|x]).

    Burda et al. 2015 ("Importance Weighted Autoencoders", sec. 5.2): a dimension
    whose posterior mean does not vary with the input carries no information.
    Unbiased (n − 1) variance, as :func:`genevae.train.evaluate.evaluate` logs it.

    Returns
    -------
    np.ndarray
        (n_latent,) variances, in squared latent units.
    """
    mean, _ = check_posterior(qz_mean)
    return mean.var(axis=0, ddof=1) if len(mean) > 1 else np.zeros(mean.shape[1])


def active_units(qz_mean: ArrayLike, threshold: float = ACTIVE_UNIT_VARIANCE) -> int:
    """Number of dimensions with A_j = Var_x(E_q[z_j|x]) > ``threshold`` (Burda et al. 2015)."""
    return int((posterior_mean_variance(qz_mean) > threshold).sum())


#: A principal direction of the posterior means is informative when the spread of the
#: means along it exceeds the posterior's own spread along it (signal-to-noise > 1),
#: i.e. it tells cells apart by more than ½ ln 2 ≈ 0.35 nats (Gaussian channel).
INFORMATIVE_DIRECTION_SNR = 1.0  # genevae choice; on simulate bulk (20 factors) every β ≥ 2 gives 20


def informative_directions(
    qz_mean: ArrayLike, qz_logvar: ArrayLike, snr: float = INFORMATIVE_DIRECTION_SNR
) -> int:
    """Number of directions of the latent space that carry information about the cell.

    Active units (:func:`active_units`) count axes, so they depend on the rotation the
    encoder happens to learn: 20 true factors spread over 64 axes give 64 active units.
    This count does not. With Σ = Cov_x(μ(x)) = U Λ Uᵀ, direction u_k is informative
    when its between-cell variance λ_k exceeds the mean posterior variance along it,
    E_x[Σ_j U_jk² σ_j²(x)], by the factor ``snr``. An axis-aligned latent has as many
    informative directions as active units.

    Returns
    -------
    int
        Between 0 and n_latent.
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    if len(mean) < 2:
        return 0
    between, directions = np.linalg.eigh(np.cov(mean, rowvar=False).reshape(mean.shape[1], -1))
    within = np.exp(logvar).mean(axis=0) @ directions**2  # (n_latent,) posterior variance along u_k
    return int((between > snr * within).sum())
