"""Measurements of a latent space from a snapshot of encoder outputs.

Every function reads the posterior means ``qz_mean`` and log-variances
``qz_logvar`` of a diagonal Gaussian posterior q(z|x) = N(μ(x), diag σ²(x)), each
an array of shape (n_cells, n_latent), and, for the structure scores, labels of
the cells. Nothing here touches a model or a trainer (STYLE, "The shape of the
house"). KL and mutual information are in nats per cell.

Which measurement answers which question:

- is each latent dimension used? :func:`kl_per_dim`, :func:`active_units`;
- how many directions does the latent really use? :func:`informative_directions`
  (rotation-invariant: a latent that spreads 20 factors over 64 axes has 64 active
  units but 20 informative directions);
- how much does the latent say about the cell? :func:`mutual_information`;
- does the aggregate posterior fill the prior? :func:`prior_mismatch`;
- does the latent separate labels and mix batches? :func:`silhouette_labels`,
  :func:`batch_mixing`, and the probes in :mod:`genevae.diagnosis.probes`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.errors import GenevaeError
from genevae.model.kl import kl_normal_standard

if TYPE_CHECKING:  # probes imports this module, so at run time it is imported where used
    from genevae.diagnosis.probes import ProbeResult

__all__ = [
    "ACTIVE_UNIT_VARIANCE",
    "KL_QUANTILES",
    "MI_MAX_CELLS",
    "MI_MIN_CELLS",
    "SILHOUETTE_MAX_CELLS",
    "BATCH_MIXING_K",
    "check_posterior",
    "encode_labels",
    "sample_posterior",
    "kl_per_dim",
    "KLSummary",
    "kl_per_dim_summary",
    "posterior_mean_variance",
    "active_units",
    "INFORMATIVE_DIRECTION_SNR",
    "informative_directions",
    "MutualInformation",
    "mi_ceiling",
    "mutual_information",
    "prior_mismatch",
    "silhouette_labels",
    "batch_mixing",
    "LatentMetrics",
    "compute_latent_metrics",
]

#: Quantiles over cells reported for each dimension's KL distribution.
KL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # genevae choice: median, quartiles, 90% range
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
#: Silhouette is O(n²) in memory and time; above this many cells it is computed on a
#: seeded subsample of this size (sklearn ``sample_size``).
SILHOUETTE_MAX_CELLS = 5_000  # genevae choice
#: Neighbours whose batch labels enter the batch-mixing entropy.
BATCH_MIXING_K = 50  # trVAE's entropy_batch_mixing (Lotfollahi et al. 2020)


# -- inputs ----------------------------------------------------------------------------


def check_posterior(
    qz_mean: ArrayLike, qz_logvar: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means (and log-variances) as float64 arrays of shape (n_cells, n_latent).

    Raises
    ------
    ValueError
        When an array is not 2-D, the shapes differ or there are no cells.
    GenevaeError
        When a value is not finite: the encoder diverged, nothing can be measured.
    """
    arrays = []
    for name, values in (("qz_mean", qz_mean), ("qz_logvar", qz_logvar)):
        if values is None:
            arrays.append(None)
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n_cells, n_latent), got {values.shape}")
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise GenevaeError(
                f"{name} has {n_bad} non-finite values: the encoder diverged, so the latent "
                "space cannot be measured. Diagnose the training history first."
            )
        arrays.append(values)
    mean, logvar = arrays
    if logvar is not None and logvar.shape != mean.shape:
        raise ValueError(f"qz_mean {mean.shape} and qz_logvar {logvar.shape} differ in shape")
    return mean, logvar


def encode_labels(
    labels: ArrayLike, n_cells: int, label_name: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of per-cell labels, checked for use as classes.

    Parameters
    ----------
    labels
        (n_cells,) any hashable values, e.g. an ``adata.obs`` column.
    n_cells
        Cells the labels must cover.
    label_name
        The column's name, for messages.

    Returns
    -------
    classes, codes
        (n_classes,) the distinct labels, sorted; (n_cells,) index of each cell's class.

    Raises
    ------
    GenevaeError
        When a label is missing or there is only one class.
    """
    values = pd.Series(np.asarray(labels, dtype=object).ravel())
    if len(values) != n_cells:
        raise ValueError(f"{label_name} has {len(values)} values for {n_cells} cells")
    missing = values.isna()
    if missing.any():
        raise GenevaeError(
            f"label {label_name!r} is missing for {int(missing.sum())} of {n_cells} cells "
            f"(first at row {int(np.flatnonzero(missing)[0])}): fill or drop them."
        )
    codes, classes = pd.factorize(values, sort=True)
    if len(classes) < 2:
        raise GenevaeError(
            f"label {label_name!r} has a single class ({classes[0]!r}): there is nothing to "
            "separate. Choose a column with at least two classes."
        )
    return np.asarray(classes), codes.astype(np.int64)


def sample_posterior(
    qz_mean: np.ndarray, qz_logvar: np.ndarray, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """One draw z ~ q(z|x) per cell: z = μ + σ ε, ε ~ N(0, I) (Kingma & Welling 2014).

    Returns
    -------
    np.ndarray
        (n_cells, n_latent) samples.
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    rng = np.random.default_rng(seed)
    return mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)


# -- KL per dimension and active units ----------------------------------------------------


def kl_per_dim(qz_mean: ArrayLike, qz_logvar: ArrayLike) -> np.ndarray:
    """KL(q(z_j|x) ‖ N(0, 1)) of every cell and latent dimension.

    KL_ij = ½ (μ_ij² + σ_ij² − 1 − log σ_ij²)  (Kingma & Welling 2014, app. B),
    computed by :func:`genevae.model.kl.kl_normal_standard`, the model's own formula.

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
    return kl_normal_standard(torch.from_numpy(mean), torch.from_numpy(logvar)).numpy()


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


# -- mutual information and the prior ----------------------------------------------------


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


# -- structure: labels and batches -------------------------------------------------------


def silhouette_labels(
    X: ArrayLike,
    labels: ArrayLike,
    *,
    seed: int = 0,
    max_cells: int = SILHOUETTE_MAX_CELLS,
    label_name: str = "labels",
) -> float:
    """Mean silhouette width of the labels in ``X`` (Rousseeuw 1987), Euclidean.

    s_i = (b_i − a_i) / max(a_i, b_i), with a_i the mean distance of cell i to its own
    class and b_i to the nearest other class; in [−1, 1], 1 = compact, separate
    classes, ≈ 0 = overlapping. Not rescaled to [0, 1] as scib's ``silhouette_label``
    does. Above ``max_cells`` cells a seeded subsample of that size is scored.

    Parameters
    ----------
    X
        (n_cells, n_features) embedding, e.g. posterior means.
    labels
        (n_cells,) classes, at least two.
    """
    X = np.asarray(X, dtype=np.float64)
    _, codes = encode_labels(labels, len(X), label_name)
    sample_size = max_cells if len(X) > max_cells else None
    return float(silhouette_score(X, codes, sample_size=sample_size, random_state=seed))


def batch_mixing(
    X: ArrayLike, batches: ArrayLike, k: int = BATCH_MIXING_K, *, label_name: str = "batch"
) -> float:
    """Mean normalised entropy of the batch labels among each cell's k nearest neighbours.

    For cell i with neighbour batch proportions p_ib (the cell itself excluded,
    Euclidean distance in ``X``)::

        score = 1/n Σ_i H(p_i) / H(π),   H(p) = −Σ_b p_b log p_b

    with π the batch proportions over all cells. 1: every neighbourhood holds the
    batches in their overall proportions (perfectly mixed); 0: every neighbourhood
    holds one batch (separated). Normalising by H(π) rather than log n_batches makes
    randomly assigned batches score ≈ 1 whatever the batch sizes; by concavity of H
    the score stays ≤ 1 up to the uneven in-degree of the kNN graph. Entropy of
    batch mixing after Haghverdi et al. 2018 (Nat. Biotechnol., mnnCorrect).

    Parameters
    ----------
    X
        (n_cells, n_features) embedding, e.g. posterior means.
    batches
        (n_cells,) batch of each cell, at least two batches.
    k
        Neighbours per cell; ``min(k, n_cells − 1)`` are used. The plug-in entropy
        of k labels is biased low by about (n_batches − 1) / (2k) nats.
    """
    X = np.asarray(X, dtype=np.float64)
    classes, codes = encode_labels(batches, len(X), label_name)
    k = min(k, len(X) - 1)
    neighbours = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    n_batches = len(classes)
    counts = np.zeros((len(X), n_batches))  # (n_cells, n_batches)
    np.add.at(counts, (np.repeat(np.arange(len(X)), k), codes[neighbours].ravel()), 1.0)
    local = _entropy(counts / k)  # (n_cells,)
    overall = _entropy(np.bincount(codes, minlength=n_batches)[None, :] / len(X))[0]
    return float(local.mean() / overall)


def _entropy(proportions: np.ndarray) -> np.ndarray:
    """Row-wise −Σ p log p in nats, with 0 log 0 = 0; (n, n_classes) → (n,)."""
    logs = np.log(np.where(proportions > 0, proportions, 1.0))
    return -(proportions * logs).sum(axis=1)


# -- everything at once ------------------------------------------------------------------


@dataclass(frozen=True)
class LatentMetrics:
    """Every latent-space measurement of one snapshot of encoder outputs.

    Attributes
    ----------
    n_cells, n_latent
        Size of the snapshot.
    n_active
        Dimensions with posterior-mean variance above :data:`ACTIVE_UNIT_VARIANCE`.
    n_directions
        :func:`informative_directions`: the rotation-invariant count; ``None`` in
        metrics written before it existed.
    posterior_mean_variance
        (n_latent,) Var_x E_q[z_j|x] (:func:`posterior_mean_variance`).
    kl_per_dim_mean
        (n_latent,) mean over cells of each dimension's KL, nats per cell.
    rate
        Σ_j kl_per_dim_mean, nats per cell.
    mi, mi_ceiling, mi_n_cells
        I(x; z) estimate, its ceiling log M (nats) and M (:func:`mutual_information`).
    prior_mismatch
        rate − mi, nats (:func:`prior_mismatch`).
    probes
        ``{"mean": ..., "sample": ...}`` from :func:`genevae.diagnosis.probes.probe_latent`,
        or ``None`` without labels.
    pca_baseline
        The same probe on PCA of the log-normalised input, or ``None``.
    silhouette
        :func:`silhouette_labels` of the posterior means, or ``None``.
    batch_mixing
        :func:`batch_mixing` of the posterior means, or ``None``.
    label_name
        The probed label column, or ``None``.
    probe_warning
        :func:`genevae.diagnosis.probes.probe_condition_warning`'s message when the
        probed label is a condition of the model, else ``None``.
    """

    n_cells: int
    n_latent: int
    n_active: int
    posterior_mean_variance: tuple[float, ...]
    kl_per_dim_mean: tuple[float, ...]
    rate: float
    mi: float
    mi_ceiling: float
    mi_n_cells: int
    prior_mismatch: float
    probes: dict[str, ProbeResult] | None = None
    pca_baseline: ProbeResult | None = None
    silhouette: float | None = None
    batch_mixing: float | None = None
    label_name: str | None = None
    probe_warning: str | None = None
    n_directions: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values; :meth:`from_dict` reads them back."""
        out = asdict(self)
        out["posterior_mean_variance"] = list(self.posterior_mean_variance)
        out["kl_per_dim_mean"] = list(self.kl_per_dim_mean)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatentMetrics:
        """Inverse of :meth:`to_dict`."""
        from genevae.diagnosis.probes import ProbeResult

        values = dict(data)
        values["posterior_mean_variance"] = tuple(values["posterior_mean_variance"])
        values["kl_per_dim_mean"] = tuple(values["kl_per_dim_mean"])
        if values.get("probes") is not None:
            values["probes"] = {k: ProbeResult.from_dict(v) for k, v in values["probes"].items()}
        if values.get("pca_baseline") is not None:
            values["pca_baseline"] = ProbeResult.from_dict(values["pca_baseline"])
        return cls(**values)


def compute_latent_metrics(
    qz_mean: ArrayLike,
    qz_logvar: ArrayLike,
    labels: ArrayLike | None = None,
    batches: ArrayLike | None = None,
    x_lognorm: ArrayLike | None = None,
    seed: int = 0,
    *,
    label_name: str = "labels",
    condition_keys: Sequence[str] = (),
) -> LatentMetrics:
    """Run every latent measurement on one snapshot of encoder outputs.

    Parameters
    ----------
    qz_mean, qz_logvar
        (n_cells, n_latent) posterior means and log-variances.
    labels
        (n_cells,) classes to probe and score the silhouette of (e.g. cell types).
    batches
        (n_cells,) batches, for :func:`batch_mixing`.
    x_lognorm
        (n_cells, n_genes) log-normalised input, for the PCA baseline; needs ``labels``.
    seed
        Seeds the MI estimate, the sampled-z probe, the folds and the PCA.
    label_name
        Name of the ``labels`` column, for messages and the condition check.
    condition_keys
        The model's condition columns (:func:`~genevae.diagnosis.probes.probe_condition_warning`).
    """
    from genevae.diagnosis.probes import pca_baseline, probe_condition_warning, probe_latent

    mean, logvar = check_posterior(qz_mean, qz_logvar)
    if x_lognorm is not None and labels is None:
        raise ValueError("x_lognorm is only used by the PCA baseline probe, which needs labels")
    kl = kl_per_dim_summary(mean, logvar)
    variance = posterior_mean_variance(mean)
    mi = mutual_information(mean, logvar, seed=seed)
    probes = baseline = silhouette = warning = None
    if labels is not None:
        probes = probe_latent(mean, logvar, labels, seed=seed, label_name=label_name)
        silhouette = silhouette_labels(mean, labels, seed=seed, label_name=label_name)
        warning = probe_condition_warning(label_name, condition_keys)
        if x_lognorm is not None:
            baseline = pca_baseline(
                x_lognorm, mean.shape[1], labels, seed=seed, label_name=label_name
            )
    mixing = None if batches is None else batch_mixing(mean, batches)
    return LatentMetrics(
        n_cells=mean.shape[0],
        n_latent=mean.shape[1],
        n_active=int((variance > ACTIVE_UNIT_VARIANCE).sum()),
        posterior_mean_variance=tuple(float(v) for v in variance),
        kl_per_dim_mean=tuple(float(v) for v in kl.mean),
        rate=kl.rate,
        mi=mi.value,
        mi_ceiling=mi.ceiling,
        mi_n_cells=mi.n_cells,
        prior_mismatch=prior_mismatch(kl.rate, mi.value),
        probes=probes,
        pca_baseline=baseline,
        silhouette=silhouette,
        batch_mixing=mixing,
        label_name=None if labels is None else label_name,
        probe_warning=warning,
        n_directions=informative_directions(mean, logvar),
    )
