"""Latent findings from tables of measurements, and end to end from encoder outputs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from genevae.diagnosis.codes import LATENT_FINDING_CODES
from genevae.diagnosis.findings import Severity
from genevae.diagnosis.latent import LatentMetrics, compute_latent_metrics
from genevae.diagnosis.latent_findings import (
    MI_CEILING_MARGIN,
    PROBE_CHANCE_TOLERANCE,
    PROBE_PCA_MARGIN,
    latent_findings,
)
from genevae.diagnosis.probes import ClassifierScores, ProbeResult


def scores(balanced: float, accuracy: float | None = None) -> ClassifierScores:
    accuracy = balanced if accuracy is None else accuracy
    return ClassifierScores(accuracy, 0.02, balanced, 0.02)


def probe_result(
    balanced: float, accuracy: float | None = None, n_features: int = 10
) -> ProbeResult:
    """10 classes, majority rate 0.43, both classifiers scoring ``balanced``."""
    return ProbeResult(
        label_name="bulk_labels", n_cells=700, n_features=n_features, n_classes=10, n_folds=5,
        majority_rate=0.43, chance_rate=0.1,
        logistic=scores(balanced, accuracy), knn=scores(balanced - 0.01, accuracy),
    )


def metrics(**changes) -> LatentMetrics:
    """A healthy 10-dimensional latent; ``changes`` replace fields."""
    base = LatentMetrics(
        n_cells=700, n_latent=10, n_active=8,
        posterior_mean_variance=(0.5,) * 8 + (0.001,) * 2,
        kl_per_dim_mean=(1.0,) * 8 + (0.001,) * 2,
        rate=8.002, mi=4.0, mi_ceiling=math.log(700), mi_n_cells=700, prior_mismatch=4.002,
    )
    return dataclasses.replace(base, **changes)


def by_code(findings):
    return {f.code: f for f in findings}


@pytest.mark.parametrize(
    ("n_active", "n_latent", "severity"),
    [
        (0, 10, Severity.FAIL),
        (3, 10, Severity.WARN),
        (5, 10, Severity.WARN),  # half inactive: PARTIAL_COLLAPSE_DEAD_SHARE
        (6, 10, Severity.OK),
        (10, 10, Severity.OK),
        (20, 64, Severity.WARN),  # the reference run (reference README facts)
    ],
)
def test_active_units_table(n_active, n_latent, severity):
    found = by_code(latent_findings(metrics(
        n_active=n_active, n_latent=n_latent,
        posterior_mean_variance=(0.5,) * n_active + (0.0,) * (n_latent - n_active),
        kl_per_dim_mean=(1.0,) * n_active + (0.0,) * (n_latent - n_active),
    )))["active_units"]
    assert found.severity is severity
    assert f"{n_active} of {n_latent} latent dimensions active" in found.title
    assert found.evidence["n_active_kl"] == n_active
    assert (found.recommendation != "") == (severity is not Severity.OK)


@pytest.mark.parametrize(("beta", "lower"), [(0.5, "--beta 0.05"), (1.0, "--beta 0.1"), (None, "--beta 0.1")])
def test_collapse_fix_lowers_the_runs_own_beta(beta, lower):
    found = by_code(latent_findings(metrics(
        n_active=0, n_latent=10, posterior_mean_variance=(0.0,) * 10, kl_per_dim_mean=(0.0,) * 10,
    ), beta=beta))["active_units"]
    assert f"Lower β ({lower})" in found.recommendation


@pytest.mark.parametrize(
    ("sample_balanced", "severity"),
    [
        (0.1, Severity.FAIL),
        (0.1 + PROBE_CHANCE_TOLERANCE, Severity.FAIL),
        (0.1 + PROBE_CHANCE_TOLERANCE + 0.01, Severity.OK),
        (0.85, Severity.OK),
    ],
)
def test_probe_at_majority_judges_the_sampled_probe(sample_balanced, severity):
    probes = {"mean": probe_result(0.85), "sample": probe_result(sample_balanced)}
    found = by_code(latent_findings(metrics(probes=probes, label_name="bulk_labels")))
    assert found["probe_at_majority"].severity is severity
    assert found["probe_at_majority"].evidence["probed"] == "sample"


def test_probe_at_majority_title_gives_both_baselines():
    probes = {"mean": probe_result(0.11, 0.43), "sample": probe_result(0.1, 0.43)}
    found = by_code(latent_findings(metrics(probes=probes)))["probe_at_majority"]
    assert found.severity is Severity.FAIL
    assert "accuracy 0.43 vs majority rate 0.43" in found.title
    assert "balanced accuracy 0.10 vs chance 0.10" in found.title
    assert "carries no bulk_labels information" in found.title
    assert "--beta" in found.recommendation


def test_probe_at_majority_points_out_leaking_means():
    """The means separate the labels, the samples do not: the structure is below σ."""
    probes = {"mean": probe_result(0.67), "sample": probe_result(0.12)}
    found = by_code(latent_findings(metrics(probes=probes)))["probe_at_majority"]
    assert found.severity is Severity.FAIL
    assert "posterior means still separate bulk_labels (balanced accuracy 0.67)" in (
        found.recommendation
    )


def test_probe_at_majority_falls_back_to_the_means():
    found = by_code(latent_findings(metrics(probes={"mean": probe_result(0.1)})))
    assert found["probe_at_majority"].severity is Severity.FAIL
    assert found["probe_at_majority"].evidence["probed"] == "mean"


@pytest.mark.parametrize(
    ("latent", "pca", "severity"),
    [
        (0.70, 0.75, Severity.WARN),
        (0.75 - PROBE_PCA_MARGIN + 0.005, 0.75, Severity.OK),
        (0.80, 0.75, Severity.OK),
    ],
)
def test_probe_below_pca_table(latent, pca, severity):
    found = by_code(latent_findings(metrics(
        probes={"mean": probe_result(latent), "sample": probe_result(latent)},
        pca_baseline=probe_result(pca, n_features=10),
    )))["probe_below_pca"]
    assert found.severity is severity
    assert "PCA (10 components)" in found.title


def test_condition_label_is_flagged_and_not_failed():
    """Probing a condition of a cVAE: at chance is the intended result."""
    warning = "label 'batch' is a condition of the model: ..."
    found = by_code(latent_findings(metrics(
        probes={"mean": probe_result(0.1), "sample": probe_result(0.1)},
        pca_baseline=probe_result(0.95), label_name="batch", probe_warning=warning,
    )))
    assert found["probe_at_majority"].severity is Severity.OK
    assert "expected" in found["probe_at_majority"].title
    assert found["probe_label_is_condition"].severity is Severity.WARN
    assert found["probe_label_is_condition"].recommendation == warning
    assert "probe_below_pca" not in found


@pytest.mark.parametrize(
    ("mi", "saturated"),
    [
        (4.0, False),
        (math.log(700) - MI_CEILING_MARGIN - 0.01, False),
        (math.log(700) - MI_CEILING_MARGIN, True),
        (math.log(700), True),
    ],
)
def test_mi_at_ceiling_table(mi, saturated):
    found = by_code(latent_findings(metrics(mi=mi, prior_mismatch=8.0 - mi)))
    assert found["mi_at_ceiling"].severity is Severity.INFO
    assert ("use more cells" in found["mi_at_ceiling"].title) == saturated
    assert ("KL(q(z) ‖ p(z)) ≤" in found["prior_mismatch"].title) == saturated
    assert found["prior_mismatch"].evidence["upper_bound"] == int(saturated)


def test_structure_scores_are_informational():
    found = by_code(latent_findings(metrics(silhouette=0.31, batch_mixing=0.9, label_name="x")))
    assert found["label_silhouette"].severity is Severity.INFO
    assert "0.31" in found["label_silhouette"].title
    assert found["batch_mixing"].severity is Severity.INFO


def test_dict_input_gives_the_same_findings():
    full = metrics(
        probes={"mean": probe_result(0.8), "sample": probe_result(0.7)},
        pca_baseline=probe_result(0.75), silhouette=0.2, batch_mixing=0.5, label_name="bulk_labels",
    )
    assert latent_findings(full.to_dict()) == latent_findings(full)
    assert {f.code for f in latent_findings(full)} <= LATENT_FINDING_CODES


def encoder_outputs(collapsed: bool, seed: int = 0):
    """600 cells of 4 classes in a 10-dimensional latent: informative (class centres 3
    apart, σ² = 0.05) or collapsed (the same structure x 1e-4, σ² = 1)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["B", "NK", "T", "mono"], [300, 150, 100, 50])
    centres = 3.0 * rng.standard_normal((4, 10))
    codes = np.unique(labels, return_inverse=True)[1]
    structure = centres[codes] + 0.3 * rng.standard_normal((600, 10))
    if collapsed:
        return 1e-4 * structure, np.zeros((600, 10)), labels
    return structure, np.full((600, 10), np.log(0.05)), labels


def test_collapsed_encoder_fails_end_to_end():
    qz_mean, qz_logvar, labels = encoder_outputs(collapsed=True)
    found = by_code(latent_findings(compute_latent_metrics(
        qz_mean, qz_logvar, labels, label_name="cell_type"
    )))
    assert found["active_units"].severity is Severity.FAIL
    assert found["probe_at_majority"].severity is Severity.FAIL
    assert found["mi_at_ceiling"].evidence["mi"] == pytest.approx(0.0, abs=0.01)


def test_informative_encoder_passes_end_to_end():
    qz_mean, qz_logvar, labels = encoder_outputs(collapsed=False)
    found = latent_findings(compute_latent_metrics(
        qz_mean, qz_logvar, labels, label_name="cell_type"
    ))
    assert not any(f.severity.is_problem for f in found), [f.title for f in found]


def test_variance_without_information_is_not_an_active_unit():
    """Issue 18, point 2: 20 of 32 posterior-mean variances above 0.01, but every
    dimension's KL is 0.003 nats. Such a dimension carries no information, however its
    unscaled mean varies: no unit is active and the verdict is collapse, never healthy."""
    changed = metrics(
        n_latent=32, n_active=20,
        posterior_mean_variance=(0.05,) * 20 + (0.001,) * 12,
        kl_per_dim_mean=(0.003,) * 32, rate=0.096, mi=0.05, prior_mismatch=0.046,
    )
    found = by_code(latent_findings(changed))
    assert found["active_units"].severity is Severity.FAIL
    assert found["active_units"].evidence["n_active"] == 0
    assert found["active_units"].evidence["n_active_variance"] == 20
    assert found["posterior_collapse"].severity is Severity.FAIL


@pytest.mark.parametrize(
    ("rate", "mi", "collapsed", "why"),
    [
        (0.5, 0.4, True, "the rate"),  # I(x; z) ≤ rate < log 2
        (0.8, 0.46, True, "I(x; z) ≈ 0.46"),  # the pbmc68k case: rate 0.8, MI 0.46
        (0.8, 0.7, False, None),  # MI above log 2: one binary split is held
        (8.0, 4.0, False, None),
        (math.log(700) + 1, math.log(700), False, None),  # MI at its ceiling: a lower bound
    ],
)
def test_collapse_from_the_rate_and_the_mi(rate, mi, collapsed, why):
    found = by_code(latent_findings(metrics(rate=rate, mi=mi, prior_mismatch=rate - mi)))
    assert ("posterior_collapse" in found) is collapsed
    if collapsed:
        assert found["posterior_collapse"].severity is Severity.FAIL
        assert why in found["posterior_collapse"].title
        assert "log 2 = 0.69" in found["posterior_collapse"].title
