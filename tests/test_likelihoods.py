"""Likelihoods against scipy, sample moments against the formulas, finite gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import special, stats
from torch.distributions import Normal

from genevae.model.likelihoods import (
    FIXED_GAUSSIAN_VARIANCE,
    NegativeBinomial,
    ZeroInflatedNegativeBinomial,
)

COUNTS = np.array([0.0, 1.0, 2.0, 7.0, 50.0, 1e3, 1e4])
MEANS = [1e-4, 1e-2, 0.5, 5.0, 300.0, 1e4]
THETAS = [1e-2, 0.3, 1.0, 20.0, 1e3, 1e4]


def _t(a) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.float64)


def _scipy_nb_logpmf(x: np.ndarray, mu: float, theta: float) -> np.ndarray:
    return stats.nbinom.logpmf(x, n=theta, p=theta / (theta + mu))


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("mu", MEANS)
def test_nb_log_prob_matches_scipy(mu: float, theta: float) -> None:
    expected = _scipy_nb_logpmf(COUNTS, mu, theta)
    got = NegativeBinomial(_t(mu), _t(theta)).log_prob(_t(COUNTS)).numpy()
    assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("zi_logit", [-20.0, -3.0, 0.0, 2.5, 20.0])
@pytest.mark.parametrize(("mu", "theta"), [(1e-3, 1.0), (0.5, 1e-2), (5.0, 2.0), (1e3, 1e4)])
def test_zinb_log_prob_matches_direct_formula(mu: float, theta: float, zi_logit: float) -> None:
    log_pi, log_not_pi = special.log_expit(zi_logit), special.log_expit(-zi_logit)
    nb_logpmf = _scipy_nb_logpmf(COUNTS, mu, theta)
    expected = np.where(
        COUNTS == 0,
        np.logaddexp(log_pi, log_not_pi + nb_logpmf),  # log(pi + (1 - pi) NB(0))
        log_not_pi + nb_logpmf,
    )
    dist = ZeroInflatedNegativeBinomial(_t(mu), _t(theta), _t(zi_logit))
    assert_allclose(dist.log_prob(_t(COUNTS)).numpy(), expected, rtol=1e-5, atol=1e-12)


def test_normal_log_prob_matches_scipy() -> None:
    x, loc, scale = np.linspace(-4, 4, 9), np.linspace(-1, 1, 9), np.linspace(0.1, 3, 9)
    got = Normal(_t(loc), _t(scale)).log_prob(_t(x)).numpy()
    assert_allclose(got, stats.norm.logpdf(x, loc=loc, scale=scale), rtol=1e-12)


def test_fixed_gaussian_nll_is_squared_error_plus_constant() -> None:
    x, loc = np.linspace(-3, 3, 13), np.linspace(1, -2, 13)
    nll = -stats.norm.logpdf(x, loc=loc, scale=math.sqrt(FIXED_GAUSSIAN_VARIANCE))
    assert_allclose(nll, (x - loc) ** 2 + 0.5 * math.log(math.pi), rtol=1e-12)


def test_nb_pmf_sums_to_one() -> None:
    support = _t(np.arange(0, 4000))
    for mu, theta in [(3.0, 0.5), (40.0, 5.0)]:
        total = NegativeBinomial(_t(mu), _t(theta)).log_prob(support).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-9)


def _assert_moments(samples: torch.Tensor, mean: float, variance: float) -> None:
    """Sample mean and variance within 5 standard errors (estimated from the sample)."""
    x = samples.double()
    n = x.numel()
    m, s2 = x.mean().item(), x.var().item()
    se_mean = math.sqrt(s2 / n)
    se_var = math.sqrt(((x - m) ** 4).mean().item() - s2**2) / math.sqrt(n)
    assert abs(m - mean) < 5 * se_mean, (m, mean, se_mean)
    assert abs(s2 - variance) < 5 * se_var, (s2, variance, se_var)


@pytest.mark.parametrize(("mu", "theta"), [(5.0, 2.0), (0.2, 0.5), (100.0, 50.0)])
def test_nb_sample_moments(mu: float, theta: float) -> None:
    torch.manual_seed(0)
    dist = NegativeBinomial(_t(mu), _t(theta))
    samples = dist.sample((200_000,))
    assert samples.shape == (200_000,)
    assert torch.all(samples == samples.round()) and torch.all(samples >= 0)
    _assert_moments(samples, dist.mean.item(), dist.variance.item())
    assert dist.variance.item() == pytest.approx(mu + mu**2 / theta)


@pytest.mark.parametrize(("mu", "theta", "zi_logit"), [(5.0, 2.0, -1.0), (30.0, 10.0, 0.5)])
def test_zinb_sample_moments(mu: float, theta: float, zi_logit: float) -> None:
    torch.manual_seed(1)
    dist = ZeroInflatedNegativeBinomial(_t(mu), _t(theta), _t(zi_logit))
    samples = dist.sample((200_000,))
    pi = special.expit(zi_logit)
    assert dist.mean.item() == pytest.approx((1 - pi) * mu)
    assert dist.variance.item() == pytest.approx(
        (1 - pi) * (mu + mu**2 / theta) + pi * (1 - pi) * mu**2
    )
    _assert_moments(samples, dist.mean.item(), dist.variance.item())
    zero_share = (samples == 0).double().mean().item()
    p_zero = math.exp(
        ZeroInflatedNegativeBinomial(_t(mu), _t(theta), _t(zi_logit)).log_prob(_t(0.0))
    )
    assert abs(zero_share - p_zero) < 5 * math.sqrt(p_zero * (1 - p_zero) / 200_000)


def test_sample_shape_broadcasts_parameters() -> None:
    dist = NegativeBinomial(torch.full((3, 4), 2.0), torch.ones(4))
    assert dist.batch_shape == (3, 4)
    assert dist.sample().shape == (3, 4)
    assert dist.sample((5,)).shape == (5, 3, 4)
    assert dist.mean.shape == dist.variance.shape == (3, 4)
    per_gene_theta = NegativeBinomial(torch.tensor(2.0), torch.ones(4))
    assert per_gene_theta.mean.shape == per_gene_theta.sample().shape == (4,)
    zinb = ZeroInflatedNegativeBinomial(torch.full((3, 4), 2.0), torch.ones(4), torch.zeros(3, 1))
    assert zinb.sample((2,)).shape == (2, 3, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("zero_inflated", [False, True])
def test_gradients_finite_at_extremes(dtype: torch.dtype, zero_inflated: bool) -> None:
    grid = torch.cartesian_prod(
        torch.tensor([0.0, 1e-30, 1e-8, 1.0, 1e6], dtype=dtype),  # mu, incl. softmax underflow
        torch.tensor([1e-4, 1.0, 1e6], dtype=dtype),  # theta
        torch.tensor([0.0, 1.0, 1e5], dtype=dtype),  # x
        torch.tensor([-30.0, 0.0, 30.0], dtype=dtype),  # zero-inflation logits
    )
    mu, theta, zi_logits = (grid[:, i].clone().requires_grad_() for i in (0, 1, 3))
    x = grid[:, 2]
    if zero_inflated:
        dist = ZeroInflatedNegativeBinomial(mu, theta, zi_logits, validate_args=False)
    else:
        dist = NegativeBinomial(mu, theta, validate_args=False)
    log_p = dist.log_prob(x)
    assert torch.isfinite(log_p).all()
    log_p.sum().backward()
    for param in (mu, theta) + ((zi_logits,) if zero_inflated else ()):
        assert torch.isfinite(param.grad).all()


def test_zero_mean_is_a_point_mass_at_zero() -> None:
    log_p = NegativeBinomial(_t(0.0), _t(2.0), validate_args=False).log_prob(_t([0.0, 3.0]))
    assert log_p[0].item() == pytest.approx(0.0, abs=1e-12)
    assert log_p[1].item() < -100


def test_validate_args_is_respected() -> None:
    with pytest.raises(ValueError):
        NegativeBinomial(_t(-1.0), _t(1.0), validate_args=True)
    with pytest.raises(ValueError):
        ZeroInflatedNegativeBinomial(_t(1.0), _t(0.0), _t(0.0), validate_args=True)
    with pytest.raises(ValueError):
        NegativeBinomial(_t(1.0), _t(1.0), validate_args=True).log_prob(_t(1.5))
    unchecked = NegativeBinomial(_t(1.0), _t(1.0), validate_args=False)
    assert torch.isfinite(unchecked.log_prob(_t(1.5)))
