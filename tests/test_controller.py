"""The PI controller on β (ControlVAE, Shao et al. 2020) and ``--kl-target``."""

import math

import numpy as np
import pytest

from genevae.config import build_config
from genevae.data.simulate import simulate_bulk
from genevae.diagnosis.engine import diagnose
from genevae.services.fitting import fit
from genevae.train.controller import PIState, pi_kl_weight


@pytest.mark.parametrize(
    ("integral", "kl", "target", "kp", "ki", "expected_integral", "expected_beta"),
    [
        (1.0, 0.5, 0.5, 0.01, 1.0, 1.0, 1.0 + 0.01 / 2),  # on target: P = Kp / 2, I unchanged
        (1.0, 1.5, 0.5, 0.01, 1.0, 2.0, 2.0 + 0.01 / (1 + math.exp(-1.0))),  # KL too high: β up
        (1.0, 0.0, 0.5, 0.01, 1.0, 0.5, 0.5 + 0.01 / (1 + math.exp(0.5))),  # KL too low: β down
        (0.2, 0.0, 0.5, 0.01, 1.0, 0.2, 0.2 + 0.01 / (1 + math.exp(0.5))),  # would go < 0: held
    ],
)
def test_pi_step_table(integral, kl, target, kp, ki, expected_integral, expected_beta):
    state = pi_kl_weight(PIState(integral, 0.0), kl, target, kp=kp, ki=ki)
    assert state.integral == pytest.approx(expected_integral)
    assert state.beta == pytest.approx(expected_beta)


def test_beta_stays_within_bounds_and_ignores_non_finite_kl():
    state = PIState(99.9, 99.9)
    state = pi_kl_weight(state, 1e6, 0.5, beta_max=100.0)
    assert state.beta <= 100.0 and state.integral == 99.9  # anti-windup: the integral holds
    assert pi_kl_weight(state, float("nan"), 0.5) == state


def test_controller_converges_on_a_first_order_plant():
    """KL = 2 / β (more weight, less KL): the fixed point is β = 4 for target 0.5."""
    state = PIState(1.0, 1.0)
    for _ in range(2000):
        state = pi_kl_weight(state, 2.0 / max(state.beta, 1e-6), 0.5, ki=0.05)
    assert 2.0 / state.beta == pytest.approx(0.5, rel=0.02)


def test_kl_target_holds_validation_kl_per_dimension_on_simulate_bulk():
    continuous, _ = simulate_bulk(seed=0)
    config = build_config({"data": {"condition_keys": ("tissue", "disease", "batch")},
                           "objective": {"kl_target": 0.5}, "train": {"epochs": 20}})
    _, result = fit(continuous, config, echo=lambda line: None)
    frame = result.history.frame
    kl_per_dim = frame["val_kl_mean"].to_numpy()[-10:]
    assert np.all(np.abs(kl_per_dim - 0.5) <= 0.2 * 0.5), kl_per_dim
    assert frame["kl_weight"].nunique() > 1  # β is logged every epoch and moves
    diagnosis = diagnose(result.history)
    assert "kl_warmup" not in {f.code for f in diagnosis.findings}
    assert any("KL controller" in note for note in diagnosis.notes)
