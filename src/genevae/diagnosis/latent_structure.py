"""Does the latent separate labels and mix batches?

:func:`silhouette_labels` scores how compact and separate the classes of a label
are, :func:`batch_mixing` how evenly batches mix among each cell's neighbours. Both
read an embedding, e.g. the posterior means, and per-cell labels
(:func:`genevae.diagnosis.posterior.encode_labels`). The probes in
:mod:`genevae.diagnosis.probes` ask the same of a classifier.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from genevae.diagnosis.posterior import encode_labels

__all__ = ["SILHOUETTE_MAX_CELLS", "BATCH_MIXING_K", "silhouette_labels", "batch_mixing"]

#: Silhouette is O(n²) in memory and time; above this many cells it is computed on a
#: seeded subsample of this size (sklearn ``sample_size``).
SILHOUETTE_MAX_CELLS = 5_000  # genevae choice
#: Neighbours whose batch labels enter the batch-mixing entropy.
BATCH_MIXING_K = 50  # trVAE's entropy_batch_mixing (Lotfollahi et al. 2020)


def silhouette_labels(
    X: ArrayLike,
    labels: ArrayLike,
    *,
    seed: int = 0,
    max_cells: int = SILHOUETTE_MAX_CELLS,
    label_name: str = "labels",
) -> float:
    """Mean silhouette width of the labels in ``X`` (Rousseeuw 1987), Euclidean.

    s_i = (b_i − a_i) / max(a_i, b_i), with a_i the mean distance of cell i to its own
    class and b_i to the nearest other class; in [−1, 1], 1 = compact, separate
    classes, ≈ 0 = overlapping. Not rescaled to [0, 1] as scib's ``silhouette_label``
    does. Above ``max_cells`` cells a seeded subsample of that size is scored.

    Parameters
    ----------
    X
        (n_cells, n_features) embedding, e.g. posterior means.
    labels
        (n_cells,) classes, at least two.
    """
    X = np.asarray(X, dtype=np.float64)
    _, codes = encode_labels(labels, len(X), label_name)
    sample_size = max_cells if len(X) > max_cells else None
    return float(silhouette_score(X, codes, sample_size=sample_size, random_state=seed))


def batch_mixing(
    X: ArrayLike, batches: ArrayLike, k: int = BATCH_MIXING_K, *, label_name: str = "batch"
) -> float:
    """Mean normalised entropy of the batch labels among each cell's k nearest neighbours.

    For cell i with neighbour batch proportions p_ib (the cell itself excluded,
    Euclidean distance in ``X``)::

        score = 1/n Σ_i H(p_i) / H(π),   H(p) = −Σ_b p_b log p_b

    with π the batch proportions over all cells. 1: every neighbourhood holds the
    batches in their overall proportions (perfectly mixed); 0: every neighbourhood
    holds one batch (separated). Normalising by H(π) rather than log n_batches makes
    randomly assigned batches score ≈ 1 whatever the batch sizes; by concavity of H
    the score stays ≤ 1 up to the uneven in-degree of the kNN graph. Entropy of
    batch mixing after Haghverdi et al. 2018 (Nat. Biotechnol., mnnCorrect).

    Parameters
    ----------
    X
        (n_cells, n_features) embedding, e.g. posterior means.
    batches
        (n_cells,) batch of each cell, at least two batches.
    k
        Neighbours per cell; ``min(k, n_cells − 1)`` are used. The plug-in entropy
        of k labels is biased low by about (n_batches − 1) / (2k) nats.
    """
    X = np.asarray(X, dtype=np.float64)
    classes, codes = encode_labels(batches, len(X), label_name)
    k = min(k, len(X) - 1)
    neighbours = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    n_batches = len(classes)
    counts = np.zeros((len(X), n_batches))  # (n_cells, n_batches)
    np.add.at(counts, (np.repeat(np.arange(len(X)), k), codes[neighbours].ravel()), 1.0)
    local = _entropy(counts / k)  # (n_cells,)
    overall = _entropy(np.bincount(codes, minlength=n_batches)[None, :] / len(X))[0]
    return float(local.mean() / overall)


def _entropy(proportions: np.ndarray) -> np.ndarray:
    """Row-wise −Σ p log p in nats, with 0 log 0 = 0; (n, n_classes) → (n,)."""
    logs = np.log(np.where(proportions > 0, proportions, 1.0))
    return -(proportions * logs).sum(axis=1)
