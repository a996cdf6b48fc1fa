"""Closed-form KL to the standard normal against Monte Carlo and torch's KL registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genevae.model.kl import kl_normal_standard

# (mu, log sigma^2) rows; the KL per dimension ranges from 0 to about 13 nats.
CASES = [(0.0, 0.0), (1.0, 0.0), (-2.0, 0.5), (0.3, -2.0), (4.0, -6.0), (0.0, 3.0)]


def test_shape_and_zero_at_prior() -> None:
    qz_mean, qz_logvar = torch.zeros(5, 3), torch.zeros(5, 3)
    kl = kl_normal_standard(qz_mean, qz_logvar)
    assert kl.shape == (5, 3)
    assert torch.equal(kl, torch.zeros(5, 3))


@pytest.mark.parametrize(("mu", "logvar"), CASES)
def test_matches_formula_and_torch(mu: float, logvar: float) -> None:
    kl = kl_normal_standard(
        torch.tensor([[mu]], dtype=torch.float64), torch.tensor([[logvar]], dtype=torch.float64)
    )
    expected = 0.5 * (mu**2 + math.exp(logvar) - 1.0 - logvar)
    assert kl.item() == pytest.approx(expected, rel=1e-12)
    reference = kl_divergence(
        Normal(
            torch.tensor(mu, dtype=torch.float64),
            torch.tensor(math.exp(0.5 * logvar), dtype=torch.float64),
        ),
        Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)),
    )
    assert kl.item() == pytest.approx(reference.item(), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize(("mu", "logvar"), CASES)
def test_matches_monte_carlo(mu: float, logvar: float) -> None:
    """KL = E_q[log q(z) - log p(z)], estimated from 400,000 seeded draws; tolerance 5 SE."""
    generator = torch.Generator().manual_seed(7)
    q = Normal(
        torch.tensor(mu, dtype=torch.float64),
        torch.tensor(math.exp(0.5 * logvar), dtype=torch.float64),
    )
    p = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    eps = torch.randn(400_000, generator=generator, dtype=torch.float64)
    z = q.loc + q.scale * eps
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (n_samples,)
    estimate, standard_error = (
        log_ratio.mean().item(),
        log_ratio.std().item() / math.sqrt(z.numel()),
    )
    kl = kl_normal_standard(
        torch.tensor([[mu]], dtype=torch.float64), torch.tensor([[logvar]], dtype=torch.float64)
    )
    assert abs(kl.item() - estimate) <= 5 * standard_error + 1e-12, (
        kl.item(),
        estimate,
        standard_error,
    )


def test_gradient_is_zero_at_prior() -> None:
    qz_mean = torch.zeros(2, 4, requires_grad=True)
    qz_logvar = torch.zeros(2, 4, requires_grad=True)
    kl_normal_standard(qz_mean, qz_logvar).sum().backward()
    assert torch.equal(qz_mean.grad, torch.zeros(2, 4))
    assert torch.equal(qz_logvar.grad, torch.zeros(2, 4))
