import math

import pytest

from genevae.config import ObjectiveConfig
from genevae.train.schedules import (
    cyclical_schedule,
    kl_weight,
    linear_schedule,
    sigmoid_schedule,
)


@pytest.mark.parametrize(
    ("epoch", "max_beta", "warmup", "expected"),
    [
        (0, 1.0, 10, 0.0),
        (1, 1.0, 10, 0.1),
        (5, 1.0, 10, 0.5),
        (10, 1.0, 10, 1.0),
        (25, 1.0, 10, 1.0),
        (3, 0.5, 6, 0.25),
        (0, 0.5, 0, 0.5),  # no warm-up
    ],
)
def test_linear_matches_reference_formula(epoch, max_beta, warmup, expected):
    assert linear_schedule(epoch, max_beta, warmup) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        # 40 epochs, 4 cycles of 10, ramp over the first half of each cycle
        (0, 0.0),
        (1, 0.2),
        (4, 0.8),
        (5, 1.0),
        (9, 1.0),
        (10, 0.0),
        (12, 0.4),
        (39, 1.0),
    ],
)
def test_cyclical_table(epoch, expected):
    assert cyclical_schedule(epoch, 1.0, 40, 4, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 1 / (1 + math.exp(5))),
        (5, 0.5),
        (10, 1.0),
        (30, 1.0),
    ],
)
def test_sigmoid_table(epoch, expected):
    assert sigmoid_schedule(epoch, 1.0, 10) == pytest.approx(expected)


def test_sigmoid_is_monotone_and_bounded():
    values = [sigmoid_schedule(e, 2.0, 20) for e in range(30)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert 0 < values[0] < 0.02 and values[-1] == 2.0


@pytest.mark.parametrize("schedule", ["constant", "linear", "cyclical", "sigmoid"])
def test_kl_weight_dispatches_and_never_exceeds_beta(schedule):
    objective = ObjectiveConfig(beta=0.7, kl_schedule=schedule, warmup_epochs=5, n_cycles=2)
    values = [kl_weight(e, 20, objective) for e in range(20)]
    assert max(values) == pytest.approx(0.7)
    assert min(values) >= 0.0
