"""Latent-space measurements against closed forms, Monte Carlo and reference implementations."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.metrics import silhouette_score

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.diagnosis.latent import LatentMetrics, compute_latent_metrics
from genevae.diagnosis.latent_information import (
    MI_MIN_CELLS,
    mi_ceiling,
    mutual_information,
    prior_mismatch,
)
from genevae.diagnosis.latent_structure import batch_mixing, silhouette_labels
from genevae.diagnosis.latent_units import (
    active_units,
    informative_directions,
    kl_per_dim,
    kl_per_dim_summary,
    posterior_mean_variance,
)
from genevae.diagnosis.posterior import check_posterior, encode_labels, sample_posterior
from genevae.errors import GenevaeError

#: Squared loadings ||w_j||² of the 12 latent dimensions of the linear-Gaussian
#: generator: 5 carry signal (down to a weak 0.2), 7 none.
STRENGTHS = np.array([3.0, 1.5, 0.8, 0.4, 0.2] + [0.0] * 7)


def ppca_posterior(n_cells: int, seed: int, n_genes: int = 40, noise: float = 1.0):
    """Data x = W z + ε from a probabilistic PCA model with 12 latent dimensions, and
    its exact Gaussian posterior N(M⁻¹Wᵀx, σ²M⁻¹), M = WᵀW + σ²I (Tipping & Bishop 1999).

    W has orthogonal columns, so the posterior is diagonal, as an encoder's. Known
    answers: posterior-mean variance s_j / (s_j + σ²) per dimension (0 for the 7 empty
    ones), I(x; z) = ½ Σ_j log(1 + s_j / σ²), and the aggregate posterior is the
    prior, so KL(q(z) ‖ p(z)) = 0.
    """
    rng = np.random.default_rng(seed)
    n_latent = len(STRENGTHS)
    basis, _ = np.linalg.qr(rng.standard_normal((n_genes, n_latent)))
    loadings = basis * np.sqrt(STRENGTHS)  # (n_genes, n_latent)
    z = rng.standard_normal((n_cells, n_latent))
    x = z @ loadings.T + math.sqrt(noise) * rng.standard_normal((n_cells, n_genes))
    precision = loadings.T @ loadings + noise * np.eye(n_latent)
    qz_mean = np.linalg.solve(precision, loadings.T @ x.T).T  # (n_cells, n_latent)
    qz_logvar = np.broadcast_to(np.log(noise / np.diag(precision)), qz_mean.shape).copy()
    return qz_mean, qz_logvar


# -- KL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "logvar", "expected"),
    [
        (0.0, 0.0, 0.0),  # posterior = prior
        (1.0, 0.0, 0.5),  # ½ μ²
        (-2.0, 0.0, 2.0),
        (0.0, math.log(2.0), 0.5 * (2.0 - 1.0 - math.log(2.0))),
        (0.0, math.log(0.01), 0.5 * (0.01 - 1.0 - math.log(0.01))),
    ],
)
def test_kl_per_dim_table(mean, logvar, expected):
    assert_allclose(kl_per_dim([[mean]], [[logvar]]), [[expected]], rtol=1e-12, atol=1e-15)


def test_kl_per_dim_matches_the_models_kl():
    """The diagnosis's numpy KL is the model's torch formula (kl_normal_standard)."""
    import torch

    from genevae.model.kl import kl_normal_standard

    rng = np.random.default_rng(4)
    qz_mean = rng.normal(0.0, 2.0, size=(200, 7))
    qz_logvar = rng.normal(0.0, 2.0, size=(200, 7))
    model_kl = kl_normal_standard(torch.from_numpy(qz_mean), torch.from_numpy(qz_logvar))
    assert_allclose(kl_per_dim(qz_mean, qz_logvar), model_kl.numpy(), rtol=1e-12, atol=1e-15)


def test_kl_per_dim_matches_monte_carlo():
    """KL = E_q[log q(z) − log p(z)], estimated from 200,000 draws per entry, agrees
    within 4 Monte Carlo standard errors."""
    rng = np.random.default_rng(0)
    qz_mean = rng.normal(0.0, 1.5, size=(4, 3))
    qz_logvar = rng.normal(0.0, 1.0, size=(4, 3))
    sd = np.exp(0.5 * qz_logvar)
    z = qz_mean + sd * rng.standard_normal((200_000, 4, 3))
    log_ratio = norm.logpdf(z, qz_mean, sd) - norm.logpdf(z)  # (draws, 4, 3)
    estimate = log_ratio.mean(axis=0)
    standard_error = log_ratio.std(axis=0, ddof=1) / math.sqrt(len(z))
    assert np.all(np.abs(kl_per_dim(qz_mean, qz_logvar) - estimate) < 4 * standard_error)


def test_kl_per_dim_summary_matches_numpy():
    rng = np.random.default_rng(1)
    qz_mean, qz_logvar = rng.standard_normal((500, 6)), rng.standard_normal((500, 6))
    kl = kl_per_dim(qz_mean, qz_logvar)
    summary = kl_per_dim_summary(qz_mean, qz_logvar, levels=(0.1, 0.5, 0.9))
    assert_allclose(summary.mean, kl.mean(axis=0))
    assert_allclose(summary.quantiles, np.quantile(kl, [0.1, 0.5, 0.9], axis=0))
    assert summary.quantiles.shape == (3, 6)
    assert summary.rate == pytest.approx(kl.sum(axis=1).mean())


# -- informative directions -----------------------------------------------------------


def test_informative_directions_of_linear_gaussian_generator():
    """Exact PPCA posterior: direction j has signal-to-noise STRENGTHS[j] (3 and 1.5 exceed 1)."""
    qz_mean, qz_logvar = ppca_posterior(3000, seed=2)
    assert informative_directions(qz_mean, qz_logvar) == 2
    assert informative_directions(qz_mean, qz_logvar, snr=0.3) == 4


def test_informative_directions_see_through_a_rotation():
    """5 factors spread over 64 axes: about 64 active units, 5 informative directions."""
    rng = np.random.default_rng(0)
    spread, _ = np.linalg.qr(rng.standard_normal((64, 64)))  # (64, 64) orthogonal
    signal = np.zeros((4000, 64))
    signal[:, :5] = rng.standard_normal((4000, 5))
    qz_mean = signal @ spread
    qz_logvar = np.full_like(qz_mean, math.log(0.05))  # isotropic: the rotation leaves it alone
    assert active_units(qz_mean) >= 60  # an axis gets 5/64 of the variance on average
    assert informative_directions(qz_mean, qz_logvar) == 5
    assert informative_directions(signal, qz_logvar) == 5


def test_pure_noise_has_no_informative_direction():
    rng = np.random.default_rng(1)
    qz_mean = 0.05 * rng.standard_normal((2000, 16))  # means jitter, posteriors stay at the prior
    assert informative_directions(qz_mean, np.zeros_like(qz_mean)) == 0
    assert informative_directions(qz_mean[:1], np.zeros((1, 16))) == 0


# -- active units -----------------------------------------------------------------------


def test_active_units_of_linear_gaussian_generator():
    """12 latent dimensions, 5 carrying signal: exactly 5 active units."""
    qz_mean, _ = ppca_posterior(3000, seed=2)
    assert active_units(qz_mean) == 5
    expected = STRENGTHS / (STRENGTHS + 1.0)  # Var_x E[z_j|x] of the exact posterior
    # relative standard error of a variance from 3,000 cells: sqrt(2 / 3000) ≈ 2.6%
    assert_allclose(posterior_mean_variance(qz_mean)[:5], expected[:5], rtol=0.1)
    assert_allclose(posterior_mean_variance(qz_mean)[5:], 0.0, atol=1e-20)


@pytest.mark.parametrize(
    ("variances", "threshold", "expected"),
    [
        ([0.0, 0.0, 0.0], ACTIVE_UNIT_VARIANCE, 0),
        ([0.5, 0.02, 0.005], ACTIVE_UNIT_VARIANCE, 2),
        ([0.5, 0.02, 0.005], 0.001, 3),
        ([1.0, 1.0, 1.0], 2.0, 0),
    ],
)
def test_active_units_table(variances, threshold, expected):
    """Columns with a given sample variance: ±√v on two cells has variance 2v."""
    half = np.sqrt(np.asarray(variances) / 2.0)
    qz_mean = np.stack([half, -half])
    assert_allclose(posterior_mean_variance(qz_mean), variances)
    assert active_units(qz_mean, threshold) == expected


def test_posterior_mean_variance_matches_numpy():
    qz_mean = np.random.default_rng(3).standard_normal((50, 4))
    assert_allclose(posterior_mean_variance(qz_mean), np.var(qz_mean, axis=0, ddof=1))


# -- mutual information -----------------------------------------------------------------


def reference_mutual_information(qz_mean, qz_logvar, seed):
    """He et al. 2019's estimator with the sampled own term, written out in full:
    log q(z_j|x_i) for every pair from scipy, the whole (M, M, n_latent) tensor at once."""
    rng = np.random.default_rng(seed)
    sd = np.exp(0.5 * qz_logvar)
    z = qz_mean + sd * rng.standard_normal(qz_mean.shape)
    log_q = norm.logpdf(z[:, None, :], qz_mean[None, :, :], sd[None, :, :]).sum(axis=2)
    log_aggregate = logsumexp(log_q, axis=1) - math.log(len(z))
    return float(np.mean(np.diag(log_q) - log_aggregate))


def test_mutual_information_matches_reference():
    """300 cells: two chunks of the blockwise computation."""
    rng = np.random.default_rng(4)
    qz_mean, qz_logvar = rng.standard_normal((300, 5)), rng.normal(-1.0, 0.5, (300, 5))
    mi = mutual_information(qz_mean, qz_logvar, seed=7)
    assert mi.n_cells == 300
    assert mi.ceiling == pytest.approx(math.log(300))
    assert_allclose(mi.value, reference_mutual_information(qz_mean, qz_logvar, 7), rtol=1e-10)


def test_mutual_information_of_linear_gaussian_generator():
    """I(x; z) = ½ Σ log(1 + s_j) = 1.70 nats; over ten seeds the estimate's bias is
    −0.01 and its sd 0.02 nats; the tolerance is 5 sds."""
    qz_mean, qz_logvar = ppca_posterior(3000, seed=5)
    expected = 0.5 * np.log1p(STRENGTHS).sum()
    mi = mutual_information(qz_mean, qz_logvar, seed=0)
    assert mi.value == pytest.approx(expected, abs=0.1)


def test_mutual_information_of_collapsed_posterior_is_zero():
    """Every posterior N(0, 1): the mixture equals each posterior, the estimate is 0."""
    n_cells = 2500
    mi = mutual_information(np.zeros((n_cells, 8)), np.zeros((n_cells, 8)), seed=1)
    assert mi.value == pytest.approx(0.0, abs=1e-12)
    assert mi.ceiling == pytest.approx(math.log(n_cells))


def test_mutual_information_of_separated_posteriors_reaches_ceiling():
    """Far-apart posteriors with tiny variance do not overlap: the estimate is log M."""
    rng = np.random.default_rng(6)
    qz_mean = 10.0 * rng.standard_normal((1000, 4))
    mi = mutual_information(qz_mean, np.full((1000, 4), -20.0), seed=2)
    assert mi.value == pytest.approx(mi_ceiling(1000), abs=1e-6)
    assert mi.value <= mi.ceiling


def test_mutual_information_subsamples_to_max_cells():
    rng = np.random.default_rng(7)
    qz_mean = rng.standard_normal((2300, 3))
    mi = mutual_information(qz_mean, np.zeros_like(qz_mean), seed=0, max_cells=MI_MIN_CELLS)
    assert mi.n_cells == MI_MIN_CELLS
    assert mi.ceiling == pytest.approx(math.log(MI_MIN_CELLS))
    with pytest.raises(ValueError, match="MI_MIN_CELLS"):
        mutual_information(qz_mean, np.zeros_like(qz_mean), max_cells=MI_MIN_CELLS - 1)


def test_mutual_information_memory_is_bounded():
    """5,000 cells x 64 dimensions: (M, M, n_latent) would be 12.8 GB; stay below 200 MB."""
    rng = np.random.default_rng(8)
    qz_mean, qz_logvar = rng.standard_normal((5000, 64)), rng.normal(-2.0, 0.3, (5000, 64))
    tracemalloc.start()
    try:
        mi = mutual_information(qz_mean, qz_logvar, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200e6
    assert mi.n_cells == 5000
    assert mi.value <= mi.ceiling


@settings(max_examples=40, deadline=None)
@given(
    n_cells=st.integers(1, 40),
    n_latent=st.integers(1, 6),
    scale=st.floats(1e-3, 1e3),
    log_sd=st.floats(-10.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_mutual_information_never_exceeds_ceiling(n_cells, n_latent, scale, log_sd, seed):
    rng = np.random.default_rng(seed)
    qz_mean = scale * rng.standard_normal((n_cells, n_latent))
    qz_logvar = 2 * log_sd + rng.standard_normal((n_cells, n_latent))
    mi = mutual_information(qz_mean, qz_logvar, seed=seed + 1)
    assert mi.value <= mi.ceiling == pytest.approx(math.log(n_cells))


# -- prior mismatch ---------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "mi", "expected"), [(3.0, 2.5, 0.5), (1.0, 1.0, 0.0)])
def test_prior_mismatch_table(rate, mi, expected):
    assert prior_mismatch(rate, mi) == pytest.approx(expected)


def test_prior_mismatch_is_zero_when_aggregate_posterior_is_prior():
    """The exact posterior of the true generator: q(z) = p(z), so rate = I(x; z).
    Over ten seeds rate − MI has sd 0.02 nats; the tolerance is 5 sds."""
    qz_mean, qz_logvar = ppca_posterior(3000, seed=9)
    rate = kl_per_dim_summary(qz_mean, qz_logvar).rate
    mi = mutual_information(qz_mean, qz_logvar, seed=0).value
    assert rate == pytest.approx(0.5 * np.log1p(STRENGTHS).sum(), abs=0.05)
    assert prior_mismatch(rate, mi) == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prior_mismatch_of_wide_aggregate(seed):
    """μ ~ N(0, 4), σ² = 0.25 in 2 dimensions: q(z) = N(0, 4.25 I), so
    KL(q(z) ‖ p(z)) = 2 · ½ (4.25 − 1 − log 4.25) = 1.80 nats, and it is ≥ 0. Over ten
    seeds the estimate's sd is 0.04 nats; the tolerance is 5 sds."""
    rng = np.random.default_rng(seed)
    qz_mean = 2.0 * rng.standard_normal((3000, 2))
    qz_logvar = np.full_like(qz_mean, math.log(0.25))
    rate = kl_per_dim_summary(qz_mean, qz_logvar).rate
    mi = mutual_information(qz_mean, qz_logvar, seed=seed + 100).value  # noise ≠ data stream
    mismatch = prior_mismatch(rate, mi)
    assert mismatch == pytest.approx(4.25 - 1 - math.log(4.25), abs=0.2)
    assert mismatch >= 0


# -- structure --------------------------------------------------------------------------


def test_silhouette_matches_sklearn():
    rng = np.random.default_rng(10)
    labels = rng.choice(["B", "NK", "T"], size=120)
    X = rng.standard_normal((120, 4)) + (labels == "T")[:, None] * 2.0
    assert silhouette_labels(X, labels) == pytest.approx(silhouette_score(X, labels))


def test_silhouette_subsamples_like_sklearn():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, size=400)
    X = rng.standard_normal((400, 3)) + labels[:, None]
    expected = silhouette_score(X, labels, sample_size=150, random_state=3)
    assert silhouette_labels(X, labels, seed=3, max_cells=150) == pytest.approx(expected)


def test_silhouette_one_class_names_the_label():
    with pytest.raises(GenevaeError, match="'cell_type'.*single class"):
        silhouette_labels(np.zeros((5, 2)), ["T"] * 5, label_name="cell_type")


def reference_batch_mixing(X, batches, k):
    """Cell by cell: brute-force distances, neighbour counts, entropies."""
    batches = np.asarray(batches)
    names = np.unique(batches)
    overall = np.array([np.mean(batches == b) for b in names])
    h_overall = -np.sum(overall * np.log(overall))
    scores = []
    for i in range(len(X)):
        distance = np.linalg.norm(X - X[i], axis=1)
        distance[i] = np.inf
        near = batches[np.argsort(distance, kind="stable")[:k]]
        shares = np.array([np.mean(near == b) for b in names])
        shares = shares[shares > 0]
        scores.append(-np.sum(shares * np.log(shares)) / h_overall)
    return float(np.mean(scores))


def test_batch_mixing_matches_reference():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((150, 3))
    batches = rng.choice(["a", "b", "c"], size=150, p=[0.5, 0.3, 0.2])
    X[batches == "a"] += 0.7
    assert_allclose(batch_mixing(X, batches, k=10), reference_batch_mixing(X, batches, 10))


@pytest.mark.parametrize("shares", [[0.5, 0.5], [0.8, 0.2], [0.25, 0.25, 0.25, 0.25]])
def test_batch_mixing_random_batches_score_one(shares):
    """Batches assigned at random: ≈ 1 whatever their sizes. The plug-in entropy of 50
    labels is biased low by (B − 1) / 100 nats, 1–3% of H(π) here."""
    rng = np.random.default_rng(13)
    X = rng.standard_normal((2000, 5))
    batches = rng.choice(len(shares), size=2000, p=shares)
    assert batch_mixing(X, batches) == pytest.approx(1.0, abs=0.05)


def test_batch_mixing_separated_batches_score_zero():
    rng = np.random.default_rng(14)
    batches = np.repeat([0, 1, 2], 100)
    X = rng.standard_normal((300, 4)) + 50.0 * batches[:, None]
    assert batch_mixing(X, batches) == pytest.approx(0.0, abs=1e-12)


def test_batch_mixing_uses_fewer_neighbours_on_few_cells():
    X = np.arange(6, dtype=float)[:, None]
    batches = [0, 1, 0, 1, 0, 1]
    assert_allclose(batch_mixing(X, batches, k=50), reference_batch_mixing(X, batches, 5))


# -- inputs -----------------------------------------------------------------------------


def test_encode_labels_sorts_classes():
    classes, codes = encode_labels(["T", "B", "T", "NK"], 4)
    assert list(classes) == ["B", "NK", "T"]
    assert list(codes) == [2, 0, 2, 1]


def test_encode_labels_rejects_missing_values():
    with pytest.raises(GenevaeError, match="'louvain' is missing for 1 of 3 cells.*row 1"):
        encode_labels(["a", None, "b"], 3, "louvain")


def test_check_posterior_rejects_bad_input():
    with pytest.raises(GenevaeError, match="qz_logvar has 1 non-finite"):
        check_posterior(np.zeros((3, 2)), [[0, 0], [0, np.nan], [0, 0]])
    with pytest.raises(ValueError, match="differ in shape"):
        check_posterior(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="n_cells, n_latent"):
        check_posterior(np.zeros(3))


def test_sample_posterior_moments():
    qz_mean = np.full((20_000, 2), [1.0, -3.0])
    qz_logvar = np.full((20_000, 2), np.log([0.25, 4.0]))
    z = sample_posterior(qz_mean, qz_logvar, seed=0)
    # standard errors of the mean: 0.5 / 141 and 2 / 141
    assert_allclose(z.mean(axis=0), [1.0, -3.0], atol=0.06)
    assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


# -- everything at once -----------------------------------------------------------------


def test_compute_latent_metrics_round_trips_through_json():
    qz_mean, qz_logvar = ppca_posterior(400, seed=15)
    labels = np.where(qz_mean[:, 0] > 0, "up", "down")
    batches = np.random.default_rng(15).integers(0, 2, size=400)
    x_lognorm = np.random.default_rng(16).standard_normal((400, 30)) + qz_mean[:, :1]
    metrics = compute_latent_metrics(
        qz_mean, qz_logvar, labels, batches, x_lognorm, seed=0,
        label_name="direction", condition_keys=("batch",),
    )
    assert (metrics.n_cells, metrics.n_latent, metrics.n_active) == (400, 12, 5)
    assert metrics.rate == pytest.approx(sum(metrics.kl_per_dim_mean))
    assert metrics.prior_mismatch == pytest.approx(metrics.rate - metrics.mi)
    assert metrics.mi_ceiling == pytest.approx(math.log(400))
    assert set(metrics.probes) == {"mean", "sample"}
    assert metrics.pca_baseline.n_features == 12
    assert metrics.probe_warning is None
    assert metrics.label_name == "direction"
    assert metrics.silhouette is not None and metrics.batch_mixing is not None
    restored = LatentMetrics.from_dict(json.loads(json.dumps(metrics.to_dict())))
    assert restored == metrics


def test_compute_latent_metrics_without_labels():
    qz_mean, qz_logvar = ppca_posterior(200, seed=17)
    metrics = compute_latent_metrics(qz_mean, qz_logvar)
    assert metrics.probes is None and metrics.silhouette is None and metrics.label_name is None
    with pytest.raises(ValueError, match="needs labels"):
        compute_latent_metrics(qz_mean, qz_logvar, x_lognorm=np.zeros((200, 3)))


def test_compute_latent_metrics_flags_a_condition_label():
    qz_mean, qz_logvar = ppca_posterior(200, seed=18)
    batches = np.repeat(["b1", "b2"], 100)
    metrics = compute_latent_metrics(
        qz_mean, qz_logvar, batches, label_name="batch", condition_keys=["batch"]
    )
    assert "condition of the model" in metrics.probe_warning
