"""Validate an AnnData and turn it into model-ready tensors.

Everything is checked before anything is computed, and every problem is reported
with the file, the column, the cell or gene, the value and the fix.

The target the model reconstructs depends on the likelihood:

- ``nb`` / ``zinb``: the raw counts; the library is the row sum over the modelled genes.
- ``gaussian`` on counts (non-negative integers): ``log1p(x / library * target_sum)``,
  then each gene standardised to mean 0, sd 1; the library is the raw row sum.
- ``gaussian`` on continuous values (negatives, fractions, already z-scored or
  log-normalised): each gene standardised only; the library is 1.

The fitted state (:class:`~genevae.data.preprocessor.Preprocessor`) is saved in checkpoints and applied
unchanged to new data at embed time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genevae.config import LIKELIHOODS, DataConfig
from genevae.data.batches import InMemoryBatches
from genevae.data.categories import fit_categories, obs_labels
from genevae.data.io import check_unique_names
from genevae.data.messages import pluralise
from genevae.data.normalisation import (
    DEFAULT_TARGET_SUM,
    column_mean_var,
    log1p_normalise,
    row_totals,
    standardisation,
    top_variable_genes,
)
from genevae.data.preprocessor import Preprocessor, expression_matrix, uses_library
from genevae.data.values import COUNT_LIKELIHOODS, ValueSummary, check_values, summarise_values
from genevae.errors import GenevaeError

__all__ = [
    "PreparedData",
    "fit_preprocessor",
    "prepare",
    "check_likelihood",
    "choose_transform",
    "selects_on_log1p",
    "uses_library",
    "choose_genes",
    "check_kept_cells",
    "check_split_size",
    "MIN_SPLIT_CELLS",
]

log = logging.getLogger(__name__)

#: Fewest cells in each of the training and validation sets.
MIN_SPLIT_CELLS = 2


@dataclass
class PreparedData:
    """Model-ready tensors for all kept cells.

    Attributes
    ----------
    x
        (n_cells, n_genes) float32 target (see :meth:`Preprocessor.transform_matrix`).
    library
        (n_cells,) float32 total counts over the modelled genes (ones if continuous).
    conditions
        (n_cells, n_condition_keys) int64 category codes.
    labels
        (n_cells,) str labels from ``DataConfig.label_key``, or None.
    obs_names
        (n_cells,) str names of the kept cells.
    n_categories
        Number of categories of each condition key.
    """

    x: torch.Tensor
    library: torch.Tensor
    conditions: torch.Tensor
    labels: np.ndarray | None
    obs_names: np.ndarray
    n_categories: tuple[int, ...]

    @property
    def n_cells(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.x.shape[1])

    def tensors(self, cells: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, library)`` of ``cells``: (n, n_genes) and (n,)."""
        index = torch.as_tensor(cells, dtype=torch.long)
        return self.x[index], self.library[index]

    def batches(
        self,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> InMemoryBatches:
        """Batches over the cells ``indices`` (see :class:`InMemoryBatches`)."""
        return InMemoryBatches(self.x, self.library, self.conditions, indices, batch_size,
                               shuffle, seed, device)


def _nonzero_columns(matrix) -> np.ndarray:
    """(n_genes,) bool: whether each column holds a value other than 0."""
    if sp.issparse(matrix):
        stored = matrix.indices[matrix.data != 0]
        return np.bincount(stored, minlength=matrix.shape[1]) > 0
    return (matrix != 0).any(axis=0)


def check_split_size(n_cells: int, val_fraction: float, source: str) -> None:
    """At least :data:`MIN_SPLIT_CELLS` cells on each side of the split.

    The validation set has ``ceil(val_fraction * n_cells)`` cells (scikit-learn's rule).
    """
    n_val = math.ceil(val_fraction * n_cells)
    n_train = n_cells - n_val
    if n_val >= MIN_SPLIT_CELLS and n_train >= MIN_SPLIT_CELLS:
        return
    if n_cells < 2 * MIN_SPLIT_CELLS:
        fix = f"at least {2 * MIN_SPLIT_CELLS} cells are needed"
    else:
        low, high = MIN_SPLIT_CELLS / n_cells, (n_cells - MIN_SPLIT_CELLS) / n_cells
        fix = f"use a val_fraction between {low:.3g} and {high:.3g} (--val-fraction), or more cells"
    raise GenevaeError(
        f"{source}: {pluralise(n_cells, 'cell')} remain after filtering; "
        f"val_fraction={val_fraction:g} puts {n_val} in validation and {n_train} in training, "
        "but each needs at least "
        f"{MIN_SPLIT_CELLS}: {fix}."
    )


def _in_memory_variance(matrix, on_log1p: bool, target_sum: float) -> np.ndarray:
    """Per-column variance of ``log1p(x / library * target_sum)`` (library = row sum)
    when ``on_log1p``, else of the values themselves."""
    values = log1p_normalise(matrix, row_totals(matrix), target_sum) if on_log1p else matrix
    return column_mean_var(values)[1]


def check_likelihood(likelihood: str) -> None:
    """Raise :class:`GenevaeError` unless ``likelihood`` is one of ``LIKELIHOODS``."""
    if likelihood not in LIKELIHOODS:
        raise GenevaeError(f"likelihood {likelihood!r}: choose one of {', '.join(LIKELIHOODS)}.")


def choose_transform(likelihood: str, is_counts: bool, values: ValueSummary, source: str) -> str:
    """``"log1p"`` for the Gaussian on counts, else ``"none"`` (logged)."""
    if likelihood == "gaussian" and is_counts:
        log.info(
            "%s: values are counts (non-negative integers): modelling log1p of "
            "library-normalised values, standardised per gene.",
            source,
        )
    elif likelihood == "gaussian":
        note = f" {values.log_normalised_note()}" if values.looks_log_normalised else ""
        log.info(
            "%s: values are continuous (negative or non-integer): standardising each gene only.%s",
            source,
            note,
        )
    return "log1p" if likelihood == "gaussian" and is_counts else "none"


def selects_on_log1p(likelihood: str, is_counts: bool) -> bool:
    """Whether gene variances are taken of log1p-normalised counts (else of the values)."""
    return is_counts or likelihood in COUNT_LIKELIHOODS


def choose_genes(
    expressed: np.ndarray,
    n_top_genes: int | None,
    on_log1p: bool,
    variance_of,
    source: str,
) -> np.ndarray:
    """Indices of the modelled genes: the expressed ones, or their ``n_top_genes`` most variable.

    ``expressed`` is (n_genes,) bool; ``variance_of(genes)`` gives the variance of
    those genes (see :func:`top_variable_genes`).
    """
    genes = np.flatnonzero(expressed)
    if len(genes) < len(expressed):
        log.info(
            "%s: dropped %s that are zero in every cell.",
            source,
            pluralise(len(expressed) - len(genes), "gene"),
        )
    if not len(genes):
        raise GenevaeError(
            f"{source}: every gene is zero in every cell; there is nothing to model."
        )
    if n_top_genes is not None:
        if n_top_genes < len(genes):
            genes = genes[top_variable_genes(variance_of(genes), n_top_genes)]
            log.info(
                "%s: kept the %d most variable genes (variance of %s).",
                source,
                len(genes),
                "log1p-normalised counts" if on_log1p else "the values",
            )
        else:
            log.info(
                "%s: n_top_genes=%d is not below the %d expressed genes; keeping all.",
                source,
                n_top_genes,
                len(genes),
            )
    return genes


def check_kept_cells(keep: np.ndarray, obs_names: pd.Index, strict: bool, source: str) -> None:
    """Log (or, with ``strict``, raise on) cells without counts in the modelled genes."""
    n_empty = int((~keep).sum())
    if n_empty:
        message = (
            f"{source}: {pluralise(n_empty, 'cell')} without counts in the modelled genes "
            f"(first: {obs_names[int(np.argmin(keep))]!r})"
        )
        if strict:
            raise GenevaeError(message + "; remove them, or drop --strict to skip them.")
        log.info("%s; dropped them.", message)
    if not keep.any():
        raise GenevaeError(f"{source}: no cell has counts in the modelled genes.")


def _fit(
    adata: ad.AnnData,
    likelihood: str,
    condition_keys: tuple[str, ...],
    n_top_genes: int | None,
    strict: bool,
    source: str,
    layer: str | None = None,
) -> tuple[Preprocessor, np.ndarray, np.ndarray | sp.csr_matrix]:
    """The preprocessor, the mask of kept cells and the matrix over the kept genes."""
    check_likelihood(likelihood)
    condition_keys = tuple(condition_keys)
    categories = fit_categories(adata.obs, condition_keys, source)
    matrix = expression_matrix(adata, layer, source)
    check_unique_names(adata.var_names, "gene", source)
    values = summarise_values(matrix)
    is_counts = check_values(values, adata.obs_names, adata.var_names, likelihood, strict, source)
    transform = choose_transform(likelihood, is_counts, values, source)
    on_log1p = selects_on_log1p(likelihood, is_counts)
    genes = choose_genes(
        _nonzero_columns(matrix), n_top_genes, on_log1p,
        lambda genes: _in_memory_variance(matrix[:, genes], on_log1p, DEFAULT_TARGET_SUM), source,
    )
    selected = matrix[:, genes]

    keep = np.ones(adata.n_obs, dtype=bool)
    if uses_library(likelihood, transform):
        keep = row_totals(selected) > 0
        check_kept_cells(keep, adata.obs_names, strict, source)

    gene_mean = gene_std = None
    if likelihood == "gaussian":
        rows = selected[keep]
        values = (
            log1p_normalise(rows, row_totals(rows), DEFAULT_TARGET_SUM)
            if transform == "log1p"
            else rows
        )
        gene_mean, gene_std = standardisation(*column_mean_var(values))
    preprocessor = Preprocessor(
        gene_names=tuple(adata.var_names[genes].astype(str)),
        likelihood=likelihood,
        transform=transform,
        gene_mean=gene_mean,
        gene_std=gene_std,
        condition_keys=condition_keys,
        condition_categories=categories,
        target_sum=DEFAULT_TARGET_SUM,
    )
    return preprocessor, keep, selected


def fit_preprocessor(
    adata: ad.AnnData,
    likelihood: str,
    condition_keys: tuple[str, ...] = (),
    n_top_genes: int | None = None,
    strict: bool = False,
    source: str = "the data",
) -> Preprocessor:
    """Validate ``adata`` and fit the preprocessing for ``likelihood``.

    Steps: check conditions (present, no missing values, ≥ 2 categories) and values
    (finite; for NB/ZINB non-negative and integer, else a warning or, with
    ``strict``, an error); choose the transform; drop genes that are zero in every
    cell; keep the ``n_top_genes`` most variable genes (variance of log1p-normalised
    counts, or of the values if continuous); drop cells with no counts in the kept
    genes (an error with ``strict``); compute the Gaussian standardisation.

    Parameters
    ----------
    adata
        (n_cells, n_genes) with the values in ``X``.
    likelihood
        ``"gaussian"``, ``"nb"`` or ``"zinb"``.
    condition_keys
        Categorical ``.obs`` columns to condition on.
    n_top_genes
        Keep this many highly variable genes (None: all expressed genes).
    strict
        Turn data warnings into errors.
    source
        Names the data in messages (e.g. the file path).

    Raises
    ------
    GenevaeError
        For any of the problems above, naming the column, cell, gene or value.
    """
    return _fit(adata, likelihood, condition_keys, n_top_genes, strict, source)[0]


def prepare(
    adata: ad.AnnData, config: DataConfig, likelihood: str
) -> tuple[Preprocessor, PreparedData]:
    """Validate and prepare ``adata`` for training under ``config``.

    Uses ``adata.layers[config.layer]`` when a layer is set, else ``X``; names the
    data ``config.path`` in messages. Fits the preprocessing (see
    :func:`fit_preprocessor`), drops the cells it rejects, and checks that enough
    cells remain for a split with ``config.val_fraction``.
    """
    source = config.path or "the AnnData object"
    labels = obs_labels(adata.obs, config.label_key, source) if config.label_key else None
    preprocessor, keep, selected = _fit(
        adata,
        likelihood,
        config.condition_keys,
        config.n_top_genes,
        config.strict,
        source,
        config.layer,
    )
    check_split_size(int(keep.sum()), config.val_fraction, source)
    x, library = preprocessor.transform_matrix(selected[keep])
    prepared = PreparedData(
        x=torch.from_numpy(x),
        library=torch.from_numpy(library),
        conditions=torch.from_numpy(preprocessor.encode_conditions(adata.obs[keep])),
        labels=None if labels is None else labels[keep],
        obs_names=np.asarray(adata.obs_names[keep], dtype=str),
        n_categories=tuple(len(c) for c in preprocessor.condition_categories),
    )
    log.info(
        "%s: prepared %d cells x %d genes for the %s likelihood.",
        source,
        prepared.n_cells,
        prepared.n_genes,
        likelihood,
    )
    return preprocessor, prepared
