"""KL-weight (β) schedules as pure functions of the epoch.

The trainer computes β for each epoch and passes it to the model; the model never
sees the epoch. Epochs are 0-based here: epoch 0 is the first epoch, so the
linear warm-up starts at β = 0 as the reference document's
``kl_annealing_schedule`` does.
"""

from __future__ import annotations

import math

from genevae.config import ObjectiveConfig

__all__ = [
    "constant_schedule",
    "linear_schedule",
    "cyclical_schedule",
    "sigmoid_schedule",
    "kl_weight",
    "SIGMOID_STEEPNESS",
]

#: Slope of the logistic warm-up in units of the warm-up length: β reaches
#: 0.7% of max at the start and 99.3% at the end (genevae choice).
SIGMOID_STEEPNESS = 10.0


def constant_schedule(epoch: int, max_beta: float) -> float:
    """β = max_beta at every epoch."""
    return max_beta


def linear_schedule(epoch: int, max_beta: float, warmup_epochs: int) -> float:
    """Linear warm-up, reference document "KL Annealing".

    ``min(max_beta, max_beta * epoch / warmup_epochs)``; no warm-up when
    ``warmup_epochs`` is 0.
    """
    if warmup_epochs <= 0:
        return max_beta
    return min(max_beta, max_beta * epoch / warmup_epochs)


def cyclical_schedule(
    epoch: int, max_beta: float, n_epochs: int, n_cycles: int, ramp: float
) -> float:
    """Cyclical annealing (Fu et al. 2019, "Cyclical Annealing Schedule").

    The run is cut into ``n_cycles`` cycles of ``n_epochs / n_cycles`` epochs. Within
    a cycle, with τ the position in [0, 1), β rises linearly from 0 over the first
    ``ramp`` proportion (β = max_beta · τ / R) and stays at max_beta for the rest.
    """
    period = n_epochs / n_cycles
    if period <= 0:
        return max_beta
    tau = (epoch % period) / period
    return max_beta * min(1.0, tau / ramp)


def sigmoid_schedule(epoch: int, max_beta: float, warmup_epochs: int) -> float:
    """Logistic warm-up centred at half the warm-up, reaching max_beta after it.

    ``β = max_beta / (1 + exp(-k (epoch / warmup_epochs - 1/2)))`` for
    ``epoch < warmup_epochs`` with ``k = SIGMOID_STEEPNESS``; max_beta afterwards.
    """
    if warmup_epochs <= 0 or epoch >= warmup_epochs:
        return max_beta
    return max_beta / (1.0 + math.exp(-SIGMOID_STEEPNESS * (epoch / warmup_epochs - 0.5)))


def kl_weight(epoch: int, n_epochs: int, objective: ObjectiveConfig) -> float:
    """β for ``epoch`` (0-based) of an ``n_epochs`` run under ``objective``'s schedule."""
    name = objective.kl_schedule
    if name == "constant":
        return constant_schedule(epoch, objective.beta)
    if name == "linear":
        return linear_schedule(epoch, objective.beta, objective.warmup_epochs)
    if name == "cyclical":
        return cyclical_schedule(
            epoch, objective.beta, n_epochs, objective.n_cycles, objective.cycle_ramp
        )
    if name == "sigmoid":
        return sigmoid_schedule(epoch, objective.beta, objective.warmup_epochs)
    raise ValueError(f"unknown KL schedule {name!r}")
