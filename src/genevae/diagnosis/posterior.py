"""The inputs of every latent measurement: posterior snapshots and per-cell labels, checked.

A snapshot of encoder outputs is the posterior means ``qz_mean`` and log-variances
``qz_logvar`` of a diagonal Gaussian posterior q(z|x) = N(μ(x), diag σ²(x)), each an
array of shape (n_cells, n_latent). The latent measurements (:mod:`.latent_units`,
:mod:`.latent_information`, :mod:`.latent_structure`) and the probes
(:mod:`.probes`) read them through :func:`check_posterior` and labels through
:func:`encode_labels`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from genevae.errors import GenevaeError

__all__ = ["check_posterior", "encode_labels", "sample_posterior"]


def check_posterior(
    qz_mean: ArrayLike, qz_logvar: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means (and log-variances) as float64 arrays of shape (n_cells, n_latent).

    Raises
    ------
    ValueError
        When an array is not 2-D, the shapes differ or there are no cells.
    GenevaeError
        When a value is not finite: the encoder diverged, nothing can be measured.
    """
    arrays = []
    for name, values in (("qz_mean", qz_mean), ("qz_logvar", qz_logvar)):
        if values is None:
            arrays.append(None)
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n_cells, n_latent), got {values.shape}")
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise GenevaeError(
                f"{name} has {n_bad} non-finite values: the encoder diverged, so the latent "
                "space cannot be measured. Diagnose the training history first."
            )
        arrays.append(values)
    mean, logvar = arrays
    if logvar is not None and logvar.shape != mean.shape:
        raise ValueError(f"qz_mean {mean.shape} and qz_logvar {logvar.shape} differ in shape")
    return mean, logvar


def encode_labels(
    labels: ArrayLike, n_cells: int, label_name: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of per-cell labels, checked for use as classes.

    Parameters
    ----------
    labels
        (n_cells,) any hashable values, e.g. an ``adata.obs`` column.
    n_cells
        Cells the labels must cover.
    label_name
        The column's name, for messages.

    Returns
    -------
    classes, codes
        (n_classes,) the distinct labels, sorted; (n_cells,) index of each cell's class.

    Raises
    ------
    GenevaeError
        When a label is missing or there is only one class.
    """
    values = pd.Series(np.asarray(labels, dtype=object).ravel())
    if len(values) != n_cells:
        raise ValueError(f"{label_name} has {len(values)} values for {n_cells} cells")
    missing = values.isna()
    if missing.any():
        raise GenevaeError(
            f"label {label_name!r} is missing for {int(missing.sum())} of {n_cells} cells "
            f"(first at row {int(np.flatnonzero(missing)[0])}): fill or drop them."
        )
    codes, classes = pd.factorize(values, sort=True)
    if len(classes) < 2:
        raise GenevaeError(
            f"label {label_name!r} has a single class ({classes[0]!r}): there is nothing to "
            "separate. Choose a column with at least two classes."
        )
    return np.asarray(classes), codes.astype(np.int64)


def sample_posterior(
    qz_mean: np.ndarray, qz_logvar: np.ndarray, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """One draw z ~ q(z|x) per cell: z = μ + σ ε, ε ~ N(0, I) (Kingma & Welling 2014).

    Returns
    -------
    np.ndarray
        (n_cells, n_latent) samples.
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    rng = np.random.default_rng(seed)
    return mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)
