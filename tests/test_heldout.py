"""The no-latent baseline, the IWAE bound and the traversal, on data with a known answer."""

import numpy as np
import pytest
import torch
from scipy import stats

from genevae.config import ModelConfig
from genevae.data.batches import InMemoryBatches
from genevae.diagnosis.findings import Severity
from genevae.diagnosis.heldout import heldout_finding
from genevae.model.vae import VAE
from genevae.train.heldout import (
    fit_no_latent_baseline,
    importance_weighted_bound,
    latent_traversal,
    mean_reconstruction_loss,
)


def _batches(x, library, conditions, idx, shuffle=False):
    return InMemoryBatches(torch.as_tensor(x, dtype=torch.float32),
                           torch.as_tensor(library, dtype=torch.float32),
                           torch.as_tensor(conditions, dtype=torch.long), idx, 128, shuffle, 0)


def test_gaussian_baseline_recovers_condition_means():
    rng = np.random.default_rng(0)
    codes = rng.integers(3, size=(3000, 1))
    effects = rng.normal(size=(3, 5))
    x = effects[codes[:, 0]] + 0.3 * rng.normal(size=(3000, 5))
    idx = np.arange(3000)
    baseline = fit_no_latent_baseline(_batches(x, np.ones(3000), codes, idx, True), [3],
                                      "gaussian", fixed_variance=False)
    with torch.no_grad():
        loc = baseline.generative(torch.ones(3), torch.arange(3).reshape(3, 1)).mean.numpy()
    group_means = np.stack([x[codes[:, 0] == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(loc, group_means, atol=0.02)


def test_nb_baseline_recovers_shares_and_dispersion_and_its_nll_is_scipys():
    rng = np.random.default_rng(1)
    n_cells, n_genes, theta = 4000, 6, 3.0
    share = rng.dirichlet(np.ones(n_genes))
    mu = rng.integers(500, 1500, size=n_cells)[:, None] * share
    x = rng.negative_binomial(theta, theta / (theta + mu))
    library = x.sum(1).astype(float)  # the model's library is the observed total
    codes = np.zeros((n_cells, 0), dtype=int)
    train, held = np.arange(3000), np.arange(3000, n_cells)
    baseline = fit_no_latent_baseline(_batches(x, library, codes, train, True), [], "nb", False)
    with torch.no_grad():
        fitted_share = torch.softmax(baseline.intercept, 0).numpy()
        fitted_theta = torch.exp(baseline.log_theta).numpy()
    # maximum likelihood: on its training cells no parameter does better, the true ones included
    def scipy_nll(rows, shares, thetas):
        mu_rows = library[rows, None] * shares
        return -stats.nbinom.logpmf(x[rows], thetas, thetas / (thetas + mu_rows)).sum(1).mean()

    assert scipy_nll(train, fitted_share, fitted_theta) <= scipy_nll(train, share, theta) + 1e-3
    np.testing.assert_allclose(fitted_share, share, atol=0.05)
    nll = mean_reconstruction_loss(baseline, _batches(x, library, codes, held))
    mu_fit = library[held, None] * fitted_share
    p = fitted_theta / (fitted_theta + mu_fit)
    expected = -stats.nbinom.logpmf(x[held], fitted_theta, p).sum(1).mean()
    assert nll == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("recon", "kl", "baseline", "severity"),
    [
        (90.0, 5.0, 100.0, Severity.OK),  # gain 10 > KL 5
        (95.0, 5.0, 100.0, Severity.FAIL),  # gain 5 = KL 5: nothing earned
        (99.0, 5.0, 100.0, Severity.FAIL),  # gain 1 < KL 5
        (101.0, 0.0, 100.0, Severity.FAIL),  # worse than no latent at all
    ],
)
def test_heldout_finding_table(recon, kl, baseline, severity):
    finding = heldout_finding({"model_recon": recon, "model_kl": kl, "baseline_recon": baseline,
                               "n_cells": 50})
    assert (finding.code, finding.severity) == ("uninformative_latent", severity)
    assert finding.evidence["gain"] == pytest.approx(baseline - recon)


def _model(likelihood="nb"):
    torch.manual_seed(0)
    config = ModelConfig(likelihood=likelihood, n_latent=3, n_hidden=16, dropout=0.0)
    return VAE(n_genes=12, n_categories=[2], config=config)


def test_iwae_is_at_least_the_elbo_and_exact_with_one_sample():
    model = _model()
    rng = np.random.default_rng(2)
    x = rng.poisson(5.0, size=(64, 12))
    batches = _batches(x, x.sum(1), rng.integers(2, size=(64, 1)), np.arange(64))
    result = importance_weighted_bound(model, batches, n_importance=50)
    assert result.iwae >= result.elbo
    assert result.gap == pytest.approx(result.iwae - result.elbo)
    assert result.n_cells == 64


def test_traversal_lists_top_genes_by_absolute_change():
    model = _model()
    genes = [f"g{i}" for i in range(12)]
    out = latent_traversal(model, [0, 2], 1000.0, np.array([1]), genes, n_top=4)
    assert list(out) == [0, 2]
    for listed in out.values():
        changes = [abs(c) for _, c in listed]
        assert len(listed) == 4 and changes == sorted(changes, reverse=True)
        assert {g for g, _ in listed} <= set(genes)


def test_a_latent_with_label_information_that_does_not_pay_yet_only_warns():
    finding = heldout_finding({"model_recon": 99.0, "model_kl": 5.0, "baseline_recon": 100.0,
                               "n_cells": 50}, label_signal="cell_type probe 0.65 vs chance 0.25")
    assert finding.severity is Severity.WARN
    assert "under-trained" in finding.title and "--epochs" in finding.recommendation
