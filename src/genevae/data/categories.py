"""Categorical ``.obs`` columns: the categories of each condition key, and the
classes of a label column (for a stratified split, a probe or batch mixing)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from genevae.data.messages import pluralise, shown_names
from genevae.errors import GenevaeError

__all__ = ["fit_categories", "condition_values", "obs_labels"]

log = logging.getLogger(__name__)


def _obs_column(obs: pd.DataFrame, key: str, source: str, role: str) -> pd.Series:
    if key not in obs.columns:
        present = shown_names(obs.columns) if len(obs.columns) else "none"
        raise GenevaeError(
            f"{source}: there is no .obs column {key!r} for the {role} (columns: {present}); "
            "check the name, or add the column with --sample-sheet."
        )
    return obs[key]


def condition_values(obs: pd.DataFrame, key: str, source: str) -> np.ndarray:
    """The column's values as strings; missing values raise."""
    column = _obs_column(obs, key, source, "condition")
    missing = column.isna().to_numpy()
    if missing.any():
        n_missing = pluralise(int(missing.sum()), "row")
        raise GenevaeError(
            f"{source}: condition column {key!r} has no value in {n_missing} (first: "
            f"{obs.index[int(np.argmax(missing))]!r}); fill them (e.g. 'unknown') or drop those "
            "cells."
        )
    return column.astype(str).to_numpy()


def _fit_categories(obs: pd.DataFrame, key: str, source: str) -> tuple[str, ...]:
    values = condition_values(obs, key, source)
    column = obs[key]
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(values)
        categories = tuple(c for c in column.cat.categories.astype(str) if c in present)
    else:
        categories = tuple(sorted(set(values)))
    if len(categories) < 2:
        raise GenevaeError(
            f"{source}: condition column {key!r} has a single category ({categories[0]!r}), so "
            "there is nothing to condition on; remove it from the condition keys."
        )
    return categories


def fit_categories(obs: pd.DataFrame, condition_keys: tuple[str, ...], source: str):
    """The categories of each condition key (checked: present, complete, ≥ 2 categories)."""
    return tuple(_fit_categories(obs, key, source) for key in condition_keys)


def obs_labels(obs: pd.DataFrame, key: str, source: str, role: str = "labels") -> np.ndarray:
    """The classes of ``obs[key]`` as strings, for a split, a probe or batch mixing.

    Missing values become the class ``"missing"`` (logged); fewer than two classes,
    or a missing column, raise :class:`GenevaeError` naming the column.
    """
    column = _obs_column(obs, key, source, role)
    missing = column.isna().to_numpy()
    if missing.any():
        log.info(
            "%s: %s without a %r label are labelled 'missing'.",
            source,
            pluralise(int(missing.sum()), "cell"),
            key,
        )
    labels = column.astype(str).to_numpy().astype(object)
    labels[missing] = "missing"
    n_classes = len(set(labels[~missing]))
    if n_classes < 2:
        raise GenevaeError(
            f"{source}: {role} column {key!r} has {pluralise(n_classes, 'class', 'classes')}; "
            f"{role} need at least 2 classes to stratify the split, probe the latent space or "
            "score mixing. Choose another column or omit the option."
        )
    return labels.astype(str)
