"""Downstream probes against sklearn's own cross-validation and data with known answers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import genevae.diagnosis.probes as probes
from genevae.diagnosis.probes import (
    PROBE_KNN_NEIGHBORS,
    PROBE_MAX_ITER,
    ProbeResult,
    pca_baseline,
    probe,
    probe_condition_warning,
    probe_latent,
)
from genevae.errors import GenevaeError

#: Unbalanced classes, as in PBMC: the majority rate (0.3125) is far from chance (0.125).
CLASS_SIZES = [200, 120, 100, 80, 60, 40, 20, 20]


def clustered(seed: int, spread: float = 3.0, n_dims: int = 10):
    """Cells of 8 unbalanced classes around random centres: (signal, labels)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES)
    centres = spread * rng.standard_normal((len(CLASS_SIZES), n_dims))
    return centres[labels] + rng.standard_normal((len(labels), n_dims)), labels


def test_probe_matches_sklearn_cross_validation():
    X, labels = clustered(0, spread=0.6)
    result = probe(X, labels, seed=3)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    for name, model in [
        ("logistic", LogisticRegression(max_iter=PROBE_MAX_ITER)),
        ("knn", KNeighborsClassifier(n_neighbors=PROBE_KNN_NEIGHBORS)),
    ]:
        cv = cross_validate(model, X, labels, cv=folds, scoring=["accuracy", "balanced_accuracy"])
        scores = getattr(result, name)
        assert_allclose(
            [scores.accuracy_mean, scores.accuracy_std,
             scores.balanced_accuracy_mean, scores.balanced_accuracy_std],
            [cv["test_accuracy"].mean(), cv["test_accuracy"].std(ddof=1),
             cv["test_balanced_accuracy"].mean(), cv["test_balanced_accuracy"].std(ddof=1)],
        )
    assert result.majority_rate == pytest.approx(200 / 640)
    assert result.chance_rate == pytest.approx(1 / 8)
    assert (result.n_cells, result.n_features, result.n_classes, result.n_folds) == (640, 10, 8, 5)
    assert result.logistic.n_folds_unconverged == 0


def test_probe_on_separated_clusters_is_perfect():
    X, labels = clustered(1, spread=30.0)
    result = probe(X, labels)
    assert result.logistic.balanced_accuracy_mean >= 0.99
    assert result.knn.balanced_accuracy_mean >= 0.99
    assert result.best_accuracy >= 0.99


def test_probe_on_noise_is_at_chance():
    """Features independent of the labels: balanced accuracy 1/3 up to sampling noise
    (sd ≈ √(1/3 · 2/3 / 600) ≈ 0.02 over all held-out cells); tolerance 0.07."""
    rng = np.random.default_rng(2)
    X, labels = rng.standard_normal((600, 5)), rng.integers(0, 3, size=600)
    result = probe(X, labels)
    assert result.logistic.balanced_accuracy_mean == pytest.approx(1 / 3, abs=0.07)
    assert result.knn.balanced_accuracy_mean == pytest.approx(1 / 3, abs=0.07)


@pytest.mark.parametrize(
    ("labels", "majority", "chance"),
    [
        (["a", "b"] * 10, 0.5, 0.5),
        (["a"] * 15 + ["b"] * 5, 0.75, 0.5),
        (["a"] * 6 + ["b"] * 2 + ["c"] * 2, 0.6, 1 / 3),
    ],
)
def test_probe_baselines_table(labels, majority, chance):
    X = np.random.default_rng(3).standard_normal((len(labels), 2))
    result = probe(X, labels, n_folds=2)
    assert result.majority_rate == pytest.approx(majority)
    assert result.chance_rate == pytest.approx(chance)


def test_sampled_probe_of_collapsed_latent_falls_to_majority_rate():
    """Collapse: μ = 1e-4 · structure, σ = 1. The decoder's input z ~ q(z|x) carries
    nothing, and the unscaled probes see nothing in it; standardising the means would
    have blown the 1e-4 leak up to a near-perfect score."""
    signal, labels = clustered(4)
    qz_mean = 1e-4 * signal
    probes = probe_latent(qz_mean, np.zeros_like(qz_mean), labels, seed=0)
    sample = probes["sample"]
    # balanced accuracy sd over all 640 held-out cells ≈ 0.02; tolerance 0.05
    assert sample.best_balanced_accuracy == pytest.approx(sample.chance_rate, abs=0.05)
    assert sample.best_accuracy <= sample.majority_rate + 0.05
    # Unscaled logistic regression cannot use a 1e-4 signal under its L2 penalty:
    # it predicts the majority class.
    means = probes["mean"]
    assert means.logistic.accuracy_mean == pytest.approx(means.majority_rate)
    assert means.logistic.balanced_accuracy_mean == pytest.approx(means.chance_rate)
    # kNN ignores a common scale, so the leak is visible in the means themselves.
    assert means.knn.balanced_accuracy_mean > 0.9
    standardised = cross_validate(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER)),
        qz_mean, labels, scoring="balanced_accuracy",
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0),
    )["test_score"].mean()
    assert standardised > 0.9


def test_sampled_probe_of_informative_latent_stays_high():
    signal, labels = clustered(5)
    qz_logvar = np.full_like(signal, np.log(0.1))
    probes = probe_latent(signal, qz_logvar, labels, seed=1)
    assert probes["sample"].best_balanced_accuracy > 0.9
    assert probes["mean"].best_balanced_accuracy > 0.9


def test_one_class_label_names_the_column():
    with pytest.raises(GenevaeError, match="'bulk_labels' has a single class"):
        probe(np.zeros((10, 2)), ["CD4+"] * 10, label_name="bulk_labels")


def test_single_cell_class_is_an_error():
    labels = ["a"] * 10 + ["b"] * 10 + ["rare"]
    with pytest.raises(GenevaeError, match="class 'rare' has a single cell"):
        probe(np.zeros((21, 2)), labels, label_name="louvain")


def test_small_class_reduces_the_folds():
    rng = np.random.default_rng(6)
    labels = ["a"] * 20 + ["b"] * 20 + ["c"] * 3
    result = probe(rng.standard_normal((43, 2)), labels)
    assert result.n_folds == 3


def test_n_folds_below_two_is_rejected():
    with pytest.raises(ValueError, match="n_folds"):
        probe(np.zeros((10, 2)), [0, 1] * 5, n_folds=1)


def test_pca_baseline_matches_probe_on_pca():
    rng = np.random.default_rng(7)
    signal, labels = clustered(7, spread=1.0, n_dims=4)
    x_lognorm = signal @ rng.standard_normal((4, 50)) + rng.standard_normal((640, 50))
    result = pca_baseline(x_lognorm, 6, labels, seed=2)
    components = PCA(n_components=6, random_state=2).fit_transform(x_lognorm)
    assert result == probe(components, labels, seed=2)
    assert result.n_features == 6


def test_pca_baseline_clips_components_to_the_data():
    rng = np.random.default_rng(8)
    labels = np.repeat([0, 1], 20)
    x_lognorm = rng.standard_normal((40, 5)) + labels[:, None]
    assert pca_baseline(x_lognorm, 64, labels).n_features == 5


@pytest.mark.parametrize(
    ("label", "conditions", "warned"),
    [
        ("cell_type", ["batch"], False),
        ("batch", ["batch"], True),
        ("batch", ["batch", "donor"], True),
        ("batch", [], False),
    ],
)
def test_probe_condition_warning_table(label, conditions, warned):
    warning = probe_condition_warning(label, conditions)
    assert (warning is not None) == warned
    if warned:
        assert f"{label!r} is a condition of the model" in warning


def test_probe_result_round_trips_through_json():
    X, labels = clustered(9)
    result = probe(X, labels)
    assert ProbeResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_unconverged_logistic_folds_are_counted_not_warned(monkeypatch):
    """A solver stopped at max_iter is recorded in the result, and sklearn's advice to
    scale the inputs (which the probe must not do) is not printed."""
    monkeypatch.setattr(probes, "PROBE_MAX_ITER", 1)
    X, labels = clustered(10, spread=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = probes.probe(X, labels)
    assert result.logistic.n_folds_unconverged == result.n_folds
    assert result.knn.n_folds_unconverged == 0
