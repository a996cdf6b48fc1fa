"""The seeded train/validation split: scikit-learn's train_test_split to the index, with
or without labels, and no scikit-learn loaded for a split without labels."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from genevae.data.split import split_indices


@pytest.mark.parametrize("n_cells", [2, 3, 10, 17, 85, 600, 9_000, 10_001])
@pytest.mark.parametrize("val_fraction", [0.1, 0.15, 0.2, 1 / 3, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_unlabelled_split_is_sklearns(n_cells, val_fraction, seed):
    try:
        expected = [np.sort(part) for part in train_test_split(
            np.arange(n_cells), test_size=val_fraction, random_state=seed)]
    except ValueError as refused:  # an empty training set: the same refusal
        with pytest.raises(ValueError, match="empty"):
            split_indices(n_cells, val_fraction, seed)
        assert "empty" in str(refused)
        return
    train, val = split_indices(n_cells, val_fraction, seed)
    np.testing.assert_array_equal(train, expected[0])
    np.testing.assert_array_equal(val, expected[1])


@pytest.mark.parametrize("labels", [
    np.array(list("aabbbccccc") * 6),
    np.array(["x"] * 59 + ["y"]),  # a class of one cell: not stratified
])
def test_labelled_split_is_sklearns(labels):
    counts = np.unique(labels, return_counts=True)[1]
    stratify = labels if counts.min() >= 2 else None
    expected = [np.sort(part) for part in train_test_split(
        np.arange(len(labels)), test_size=0.2, random_state=3, stratify=stratify)]
    train, val = split_indices(len(labels), 0.2, 3, labels)
    np.testing.assert_array_equal(train, expected[0])
    np.testing.assert_array_equal(val, expected[1])


def test_a_split_without_labels_loads_no_sklearn():
    code = ("import sys; from genevae.data.split import split_indices; "
            "split_indices(1000, 0.1, 0); print(any(m.startswith('sklearn') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
