"""Downstream probes: how much of a label can a classifier read from an embedding?

The reference document's third collapse symptom is "Downstream classification:
good accuracy (healthy) / near random (collapsed)". A probe makes it a number:
cross-validated logistic regression and k-nearest neighbours on the embedding,
reported next to the two baselines a classifier that ignores its input reaches —
the majority-class rate (its accuracy) and the chance rate 1 / n_classes (its
balanced accuracy).

Inputs are never standardised. A collapsed encoder still leaks a tiny signal into
its posterior means (μ ≈ 1e-4 of the data's structure while σ ≈ 1); scaling each
dimension to unit variance blows that leak up to full size (on a collapsed scVI
model a probe on standardised means scored 0.67 balanced accuracy against a
majority rate of 0.125). Unscaled, L2-regularised logistic regression cannot use
such a signal. kNN is unchanged by a common scale, so :func:`probe_latent` also
probes one sample z ~ q(z|x) per cell: the information the latent actually passes
to the decoder, which for a collapsed latent falls to the majority rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from genevae.diagnosis.posterior import check_posterior, encode_labels, sample_posterior
from genevae.errors import GenevaeError

__all__ = [
    "PROBE_N_FOLDS",
    "PROBE_KNN_NEIGHBORS",
    "PROBE_MAX_ITER",
    "ClassifierScores",
    "ProbeResult",
    "probe",
    "probe_latent",
    "pca_baseline",
    "probe_condition_warning",
]

#: Stratified cross-validation folds; fewer when the smallest class is smaller.
PROBE_N_FOLDS = 5  # genevae choice: the usual 5-fold CV
#: Neighbours of the kNN probe (fewer when a training fold is smaller).
PROBE_KNN_NEIGHBORS = 15  # genevae choice: scanpy's default neighbourhood size
#: Iterations of the logistic-regression solver (lbfgs, C = 1, no scaling).
PROBE_MAX_ITER = 1_000  # genevae choice: 10x sklearn's default; fixed so results repeat


@dataclass(frozen=True)
class ClassifierScores:
    """Scores of one classifier over the cross-validation folds.

    Attributes
    ----------
    accuracy_mean, accuracy_std
        Share of held-out cells classified correctly: mean and sample sd over folds.
    balanced_accuracy_mean, balanced_accuracy_std
        Mean over classes of the per-class recall (sklearn ``balanced_accuracy_score``):
        mean and sample sd over folds.
    n_folds_unconverged
        Folds whose solver stopped at :data:`PROBE_MAX_ITER` iterations (logistic
        regression on unscaled inputs with a large spread, e.g. PCA components); their
        scores are those of the fit reached there. Always 0 for kNN.
    """

    accuracy_mean: float
    accuracy_std: float
    balanced_accuracy_mean: float
    balanced_accuracy_std: float
    n_folds_unconverged: int = 0


@dataclass(frozen=True)
class ProbeResult:
    """Cross-validated probes of one label on one embedding, with their baselines.

    Attributes
    ----------
    label_name
        The probed label column.
    n_cells, n_features, n_classes, n_folds
        Size of the problem; ``n_folds`` as used (may be below the request).
    majority_rate
        Share of cells in the largest class: the accuracy of always predicting it.
    chance_rate
        1 / n_classes: the balanced accuracy of any constant prediction.
    logistic
        Logistic regression (:data:`PROBE_MAX_ITER` iterations, no scaling).
    knn
        k-nearest neighbours, k = :data:`PROBE_KNN_NEIGHBORS`, Euclidean.
    """

    label_name: str
    n_cells: int
    n_features: int
    n_classes: int
    n_folds: int
    majority_rate: float
    chance_rate: float
    logistic: ClassifierScores
    knn: ClassifierScores

    @property
    def best_balanced_accuracy(self) -> float:
        """The better classifier's mean balanced accuracy."""
        return max(self.logistic.balanced_accuracy_mean, self.knn.balanced_accuracy_mean)

    @property
    def best_accuracy(self) -> float:
        """The better classifier's mean accuracy."""
        return max(self.logistic.accuracy_mean, self.knn.accuracy_mean)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values; :meth:`from_dict` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeResult:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["logistic"] = ClassifierScores(**values["logistic"])
        values["knn"] = ClassifierScores(**values["knn"])
        return cls(**values)


def _n_folds(codes: np.ndarray, classes: np.ndarray, n_folds: int, label_name: str) -> int:
    """Folds for stratified CV: ``n_folds``, or the smallest class size when below it."""
    counts = np.bincount(codes)
    smallest = int(np.argmin(counts))
    if counts[smallest] < 2:
        raise GenevaeError(
            f"label {label_name!r}: class {classes[smallest]!r} has a single cell, and a "
            "cross-validated probe needs at least 2 cells of every class. Drop that class "
            "or merge it with a related one."
        )
    return min(n_folds, int(counts[smallest]))


def _scores(accuracy: list[float], balanced: list[float], unconverged: int) -> ClassifierScores:
    ddof = 1 if len(accuracy) > 1 else 0
    return ClassifierScores(
        float(np.mean(accuracy)), float(np.std(accuracy, ddof=ddof)),
        float(np.mean(balanced)), float(np.std(balanced, ddof=ddof)), unconverged,
    )


def probe(
    X: ArrayLike,
    labels: ArrayLike,
    *,
    seed: int = 0,
    n_folds: int = PROBE_N_FOLDS,
    label_name: str = "labels",
) -> ProbeResult:
    """Cross-validated logistic-regression and kNN probes of ``labels`` on ``X``.

    Stratified, shuffled k-fold CV (seeded); each classifier is fitted on the
    training folds and scored on the held-out fold. ``X`` is used as it is: no
    centring or scaling (see the module docstring).

    Parameters
    ----------
    X
        (n_cells, n_features) embedding.
    labels
        (n_cells,) classes, at least two, each with at least two cells.
    seed
        Seeds the fold assignment.
    n_folds
        Requested folds (≥ 2); reduced to the size of the smallest class.
    label_name
        The label column's name, for messages.

    Returns
    -------
    ProbeResult
        Accuracy and balanced accuracy (mean, sd over folds) of both classifiers,
        the majority rate and the chance rate 1 / n_classes.

    Raises
    ------
    GenevaeError
        When the label has one class, a missing value, or a class of one cell.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n_cells, n_features), got {X.shape}")
    classes, codes = encode_labels(labels, len(X), label_name)
    n_folds = _n_folds(codes, classes, n_folds, label_name)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    results: dict[str, tuple[list[float], list[float]]] = {"logistic": ([], []), "knn": ([], [])}
    n_unconverged = 0
    for train, test in folds.split(X, codes):
        logistic = LogisticRegression(max_iter=PROBE_MAX_ITER)
        with warnings.catch_warnings():  # counted below; its advice to scale does not apply
            warnings.simplefilter("ignore", ConvergenceWarning)
            logistic.fit(X[train], codes[train])
        n_unconverged += int(np.max(logistic.n_iter_) >= PROBE_MAX_ITER)
        knn = KNeighborsClassifier(n_neighbors=min(PROBE_KNN_NEIGHBORS, len(train)))
        knn.fit(X[train], codes[train])
        for name, classifier in (("logistic", logistic), ("knn", knn)):
            predicted = classifier.predict(X[test])
            results[name][0].append(accuracy_score(codes[test], predicted))
            results[name][1].append(balanced_accuracy_score(codes[test], predicted))
    counts = np.bincount(codes)
    return ProbeResult(
        label_name=label_name,
        n_cells=len(X),
        n_features=X.shape[1],
        n_classes=len(classes),
        n_folds=n_folds,
        majority_rate=float(counts.max() / len(X)),
        chance_rate=1.0 / len(classes),
        logistic=_scores(*results["logistic"], n_unconverged),
        knn=_scores(*results["knn"], 0),
    )


def probe_latent(
    qz_mean: ArrayLike,
    qz_logvar: ArrayLike,
    labels: ArrayLike,
    seed: int = 0,
    *,
    n_folds: int = PROBE_N_FOLDS,
    label_name: str = "labels",
) -> dict[str, ProbeResult]:
    """:func:`probe` on the posterior means and on one sample z ~ q(z|x) per cell.

    Parameters
    ----------
    qz_mean, qz_logvar
        (n_cells, n_latent) posterior means and log-variances.
    labels
        (n_cells,) classes to probe.
    seed
        Seeds the z sample (z = μ + σ ε) and the folds; both probes share the folds.

    Returns
    -------
    dict
        ``"mean"``: the probe on μ, the embedding users keep (``obsm["X_genevae"]``);
        ``"sample"``: the probe on z, what the decoder receives. When the means
        separate the labels and the samples do not, the structure is below the
        posterior noise σ: the latent does not transmit it.
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    z = sample_posterior(mean, logvar, seed)
    return {
        "mean": probe(mean, labels, seed=seed, n_folds=n_folds, label_name=label_name),
        "sample": probe(z, labels, seed=seed, n_folds=n_folds, label_name=label_name),
    }


def pca_baseline(
    x_lognorm: ArrayLike,
    n_components: int,
    labels: ArrayLike,
    seed: int = 0,
    *,
    n_folds: int = PROBE_N_FOLDS,
    label_name: str = "labels",
) -> ProbeResult:
    """:func:`probe` on the first principal components of the log-normalised input.

    What a linear embedding of the same size reaches without training: a latent
    that scores below it has lost label information PCA keeps. Like the latent,
    the components are not standardised (each keeps its variance), and PCA is fitted
    on all cells before the folds are drawn, as the VAE was trained on all cells.

    Parameters
    ----------
    x_lognorm
        (n_cells, n_genes) log-normalised expression, e.g. log1p of CP10k counts;
        dense or scipy sparse.
    n_components
        Components kept, normally ``n_latent``; at most ``min(n_cells, n_genes)``.
    labels
        (n_cells,) classes to probe.
    seed
        Seeds the PCA solver and the folds.
    """
    n_components = min(n_components, *np.shape(x_lognorm))
    components = PCA(n_components=n_components, random_state=seed).fit_transform(x_lognorm)
    return probe(components, labels, seed=seed, n_folds=n_folds, label_name=label_name)


def probe_condition_warning(label_key: str, condition_keys: Sequence[str]) -> str | None:
    """A warning when the probed label is also a condition of the model, else ``None``.

    A conditional VAE receives its conditions beside z, so a working one removes
    their information from the latent on purpose: a probe of such a label at chance
    is the intended result, not a failure.
    """
    if label_key not in condition_keys:
        return None
    return (
        f"label {label_key!r} is a condition of the model: a working conditional VAE removes "
        "its information from the latent on purpose, so a probe near chance is expected. "
        "Probe a label the model does not condition on (e.g. cell type)."
    )
