"""A PI controller on β that holds the KL per latent dimension at a target.

ControlVAE (Shao et al. 2020, "ControlVAE: Controllable Variational Autoencoder"),
eq. 5: with the error e(t) = KL_target − KL(t),

    β(t) = Kp / (1 + exp(e(t))) − Ki · Σ_{j ≤ t} e(j) + β_min,

a non-linear proportional term (at most Kp) plus an integral term. genevae applies
it once per training step to the batch-mean KL per latent dimension (nats), and
stops the integral from winding up when β sits at its bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PIState", "pi_kl_weight", "KL_CONTROLLER_KP", "KL_CONTROLLER_KI", "KL_CONTROLLER_BETA_MAX"]

#: Proportional gain; the proportional term lies in (0, Kp).
KL_CONTROLLER_KP = 0.01  # ControlVAE, Shao et al. 2020 (their Kp)
#: Integral gain per step, for an error in nats per latent dimension.
KL_CONTROLLER_KI = 1.0  # genevae choice: on simulate bulk, KL within 5% of target after 10 epochs, no oscillation
#: Bounds of β; the lower one is β_min of the formula.
KL_CONTROLLER_BETA_MIN = 0.0  # ControlVAE: β_min = 0 for disentangling
KL_CONTROLLER_BETA_MAX = 100.0  # genevae choice: far above any useful β


@dataclass(frozen=True)
class PIState:
    """The controller's memory: the integral term I = −Ki Σ e, and the last β."""

    integral: float = 0.0
    beta: float = 0.0


def pi_kl_weight(
    state: PIState,
    kl_per_dim: float,
    target: float,
    kp: float = KL_CONTROLLER_KP,
    ki: float = KL_CONTROLLER_KI,
    beta_min: float = KL_CONTROLLER_BETA_MIN,
    beta_max: float = KL_CONTROLLER_BETA_MAX,
) -> PIState:
    """One controller step: the new state, whose ``beta`` the next step uses.

    Parameters
    ----------
    state
        The previous state (``PIState(integral=β0)`` starts at β0).
    kl_per_dim
        Observed KL per latent dimension, nats (batch mean; unclamped).
    target
        Desired KL per latent dimension, nats.

    A non-finite observation leaves the state unchanged. The integral is only
    accumulated while β is inside its bounds (anti-windup).
    """
    if not math.isfinite(kl_per_dim):
        return state
    error = target - kl_per_dim
    proportional = kp / (1.0 + math.exp(min(error, 700.0)))
    integral = state.integral - ki * error
    beta = proportional + integral + beta_min
    if beta > beta_max or beta < beta_min:
        integral = state.integral  # anti-windup: keep the integral where it was
        beta = min(max(proportional + integral + beta_min, beta_min), beta_max)
    return PIState(integral=integral, beta=beta)
