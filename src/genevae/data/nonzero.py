"""The non-zero entries of a mini-batch of counts, for the loss's sparse terms.

The NB/ZINB loss needs lgamma and digamma only where the count is non-zero
(:mod:`genevae.model.count_loss`). Finding those entries in a dense (batch, n_genes)
matrix is a pass over it; when the cells are also held as CSR, the entries come from
the rows' stored values directly (:func:`csr_rows_nonzero`), ~4x faster on CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["NonZero", "nonzero_entries", "csr_rows_nonzero"]


class NonZero(NamedTuple):
    """The non-zero entries of a (batch, n_genes) count matrix, in row-major order."""

    rows: Tensor  # (n_nonzero,) int64 cell
    cols: Tensor  # (n_nonzero,) int64 gene
    counts: Tensor  # (n_nonzero,) value
    flat: Tensor  # (n_nonzero,) int64 position in the flattened matrix
    per_row: Tensor  # (batch,) int64 number of non-zero entries of each cell


def nonzero_entries(x: Tensor) -> NonZero:
    """The entries > 0 of the (batch, n_genes) counts ``x``, on its device."""
    batch, n_genes = x.shape
    x = x.detach()
    if x.device.type == "cpu":  # numpy's flatnonzero is ~10x faster than torch.nonzero here
        flat_np = np.flatnonzero(x.numpy() > 0)
        ends = np.searchsorted(flat_np, np.arange(1, batch + 1) * n_genes)
        return _from_flat(torch.from_numpy(flat_np), np.diff(ends, prepend=0), n_genes,
                          x.reshape(-1).index_select(0, torch.from_numpy(flat_np)))
    flat = x.reshape(-1).nonzero().squeeze(-1)
    rows = torch.div(flat, n_genes, rounding_mode="floor")
    return NonZero(rows, flat - rows * n_genes, x.reshape(-1).index_select(0, flat), flat,
                   torch.bincount(rows, minlength=batch))


def csr_rows_nonzero(matrix: sp.csr_matrix, rows: np.ndarray) -> NonZero:
    """The stored entries > 0 of ``matrix[rows]`` (a CSR matrix of counts, float32), CPU."""
    sub = matrix[rows]
    keep = sub.data > 0
    if not keep.all():  # explicit zeros (or negative values) are not entries of the loss
        sub.data = np.where(keep, sub.data, 0)
        sub.eliminate_zeros()
    cols = torch.from_numpy(sub.indices.astype(np.int64))
    per_row = np.diff(sub.indptr)
    rows_of = torch.from_numpy(np.repeat(np.arange(len(rows), dtype=np.int64), per_row))
    flat = rows_of * matrix.shape[1] + cols
    return NonZero(rows_of, cols, torch.from_numpy(sub.data), flat, torch.from_numpy(per_row))


def _from_flat(flat: Tensor, per_row: np.ndarray, n_genes: int, counts: Tensor) -> NonZero:
    rows = torch.from_numpy(np.repeat(np.arange(len(per_row), dtype=np.int64), per_row))
    return NonZero(rows, flat - rows * n_genes, counts, flat, torch.from_numpy(per_row))
