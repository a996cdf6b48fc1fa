"""Seeded train/validation split, stratified by label when one is given."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["split_indices", "subsample_indices"]


def split_indices(
    n_cells: int, val_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation cells, each sorted.

    Stratified by ``labels`` when every class has at least two cells, so that
    both sets see every class; otherwise a plain seeded shuffle. Both are scikit-learn's
    ``train_test_split(..., test_size=val_fraction, random_state=seed)``; the plain
    shuffle is computed here, the same to the index, so that a run without labels does
    not load scikit-learn (a second of start-up).
    """
    indices = np.arange(n_cells)
    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2:
            stratify = labels
    n_val = math.ceil(val_fraction * n_cells)  # sklearn's _validate_shuffle_split
    if stratify is None and 0 < n_val < n_cells:
        permutation = np.random.RandomState(seed).permutation(n_cells)  # sklearn's ShuffleSplit
        train, val = permutation[n_val:], permutation[:n_val]
    else:  # stratified, or a size sklearn refuses with its own message
        from sklearn.model_selection import train_test_split

        train, val = train_test_split(
            indices, test_size=val_fraction, random_state=seed, stratify=stratify
        )
    return np.sort(train), np.sort(val)


def subsample_indices(indices: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """A seeded, sorted subsample of at most ``n_max`` of ``indices`` (all when 0 or enough)."""
    if n_max == 0 or n_max >= len(indices):
        return indices
    return np.sort(np.random.default_rng(seed).choice(indices, size=n_max, replace=False))
