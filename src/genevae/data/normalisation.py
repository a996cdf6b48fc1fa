"""Library normalisation and per-gene statistics: row totals, ``log1p`` of
library-normalised counts, column sums, mean and variance, the Gaussian
standardisation and the most variable genes. Sparse (CSR) input stays sparse."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "row_totals",
    "log1p_normalise",
    "column_sums",
    "mean_var_from_sums",
    "column_mean_var",
    "standardisation",
    "top_variable_genes",
    "DEFAULT_TARGET_SUM",
    "MIN_GENE_STD",
]

#: Counts per cell after library normalisation (CP10k, scanpy's ``normalize_total`` habit).
DEFAULT_TARGET_SUM = 1e4
#: A gene whose sd is below this is constant; it is centred but not scaled (genevae choice).
MIN_GENE_STD = 1e-6


def row_totals(matrix) -> np.ndarray:
    """(n_cells,) float32 row sums, accumulated in float64."""
    return np.asarray(matrix.astype(np.float64).sum(axis=1)).ravel().astype(np.float32)


def log1p_normalise(matrix, library: np.ndarray, target_sum: float):
    """``log1p(X / library * target_sum)`` row-wise; rows with library 0 stay 0. Keeps CSR."""
    scale = np.divide(target_sum, library, out=np.zeros_like(library), where=library > 0)
    if sp.issparse(matrix):
        return (sp.diags(scale) @ matrix).tocsr().log1p()
    return np.log1p(matrix * scale[:, None])


def column_sums(matrix) -> tuple[np.ndarray, np.ndarray]:
    """(n_genes,) float64 per-column sums of the values and of their squares (CSR not densified)."""
    matrix = matrix.astype(np.float64)  # scipy sums in the input dtype
    squares = matrix.multiply(matrix) if sp.issparse(matrix) else np.square(matrix)
    return np.asarray(matrix.sum(axis=0)).ravel(), np.asarray(squares.sum(axis=0)).ravel()


def mean_var_from_sums(
    total: np.ndarray, total_square: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance (ddof 0): ``var = Σx²/n - (Σx/n)²``, clipped at 0."""
    mean = total / n
    mean_square = total_square / n
    return mean, np.maximum(mean_square - mean**2, 0.0)


def column_mean_var(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population variance (ddof 0), accumulated in float64."""
    return mean_var_from_sums(*column_sums(matrix), matrix.shape[0])


def standardisation(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gene_mean, gene_std)``; a gene with sd below :data:`MIN_GENE_STD` is not scaled."""
    std = np.sqrt(variance)
    return mean, np.where(std < MIN_GENE_STD, 1.0, std)


def top_variable_genes(variance: np.ndarray, n_top_genes: int) -> np.ndarray:
    """Positions (sorted) of the ``n_top_genes`` highest ``variance`` values; ties keep the earlier."""
    order = np.argsort(-variance, kind="stable")
    return np.sort(order[:n_top_genes])
