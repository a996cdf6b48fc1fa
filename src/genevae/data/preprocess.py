"""Validate an AnnData and turn it into model-ready tensors.

Everything is checked before anything is computed, and every problem is reported
with the file, the column, the cell or gene, the value and the fix.

The target the model reconstructs depends on the likelihood:

- ``nb`` / ``zinb``: the raw counts; the library is the row sum over the modelled genes.
- ``gaussian`` on counts (non-negative integers): ``log1p(x / library * target_sum)``,
  then each gene standardised to mean 0, sd 1; the library is the raw row sum.
- ``gaussian`` on continuous values (negatives, fractions, already z-scored or
  log-normalised): each gene standardised only; the library is 1.

The fitted state (:class:`Preprocessor`) is saved in checkpoints and applied
unchanged to new data at embed time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genevae.config import LIKELIHOODS, DataConfig
from genevae.data.batches import InMemoryBatches
from genevae.data.io import as_float32, check_unique_names, shown_names
from genevae.errors import GenevaeError

__all__ = [
    "Preprocessor",
    "PreparedData",
    "fit_preprocessor",
    "prepare",
    "looks_like_counts",
    "obs_labels",
    "TRANSFORMS",
    "DEFAULT_TARGET_SUM",
    "LOG_NORMALISED_MAX",
    "MIN_GENE_STD",
    "MIN_SPLIT_CELLS",
]

log = logging.getLogger(__name__)

#: ``"log1p"``: counts, library-normalised then log1p. ``"none"``: values used as they are.
TRANSFORMS = ("log1p", "none")
#: Counts per cell after library normalisation (CP10k, scanpy's ``normalize_total`` habit).
DEFAULT_TARGET_SUM = 1e4
#: Non-negative, non-integer values below this maximum look log-normalised: log1p of
#: CP10k peaks near ln(1e4) ≈ 9.2, log2(CPM + 1) near log2(1e6) ≈ 20 (genevae choice).
LOG_NORMALISED_MAX = 20.0
#: A gene whose sd is below this is constant; it is centred but not scaled (genevae choice).
MIN_GENE_STD = 1e-6
#: Fewest cells in each of the training and validation sets.
MIN_SPLIT_CELLS = 2
_COUNT_LIKELIHOODS = ("nb", "zinb")
_STATE_FORMAT = "genevae-preprocessor-1"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 cell"``, ``"3 cells"``."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """The fitted preprocessing: which genes, which transform, which conditions.

    Attributes
    ----------
    gene_names
        Modelled genes, in model order.
    likelihood
        ``"gaussian"``, ``"nb"`` or ``"zinb"``.
    transform
        Applied to the values before standardisation: ``"log1p"`` (Gaussian on counts)
        or ``"none"`` (continuous values; and always for NB/ZINB, whose target is the
        raw counts).
    gene_mean, gene_std
        (n_genes,) float32 per-gene standardisation of the Gaussian target, computed
        on all prepared cells; None for NB/ZINB.
    condition_keys
        ``.obs`` columns the model conditions on.
    condition_categories
        For each key, its categories; a value's code is its position.
    target_sum
        Library size after normalisation, for ``transform == "log1p"``.
    """

    gene_names: tuple[str, ...]
    likelihood: str
    transform: str
    gene_mean: np.ndarray | None
    gene_std: np.ndarray | None
    condition_keys: tuple[str, ...]
    condition_categories: tuple[tuple[str, ...], ...]
    target_sum: float = DEFAULT_TARGET_SUM

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood {self.likelihood!r} not in {LIKELIHOODS}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform {self.transform!r} not in {TRANSFORMS}")
        if len(self.condition_keys) != len(self.condition_categories):
            raise ValueError("one category tuple is needed per condition key")
        for name in ("gene_mean", "gene_std"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32)
                if value.shape != (len(self.gene_names),):
                    raise ValueError(
                        f"{name} has shape {value.shape}, expected ({len(self.gene_names)},)"
                    )
                object.__setattr__(self, name, value)
        if self.likelihood == "gaussian" and (self.gene_mean is None or self.gene_std is None):
            raise ValueError("the gaussian likelihood needs gene_mean and gene_std")

    @property
    def n_genes(self) -> int:
        return len(self.gene_names)

    @property
    def uses_library(self) -> bool:
        """Whether the library is the row sum of counts (else 1 for every cell)."""
        return self.likelihood in _COUNT_LIKELIHOODS or self.transform == "log1p"

    def select_genes(self, adata: ad.AnnData) -> np.ndarray | sp.csr_matrix:
        """``adata.X`` restricted to :attr:`gene_names`, in that order.

        ``adata.X`` must hold the same kind of values as in training
        (:func:`genevae.data.io.read` with ``layer=`` puts a layer there).

        Returns
        -------
        (n_cells, n_genes) float32, dense or CSR as ``adata.X``.

        Raises
        ------
        GenevaeError
            If some modelled genes are missing from ``adata``.
        """
        index = self.gene_index(adata.var_names)
        return as_float32(_matrix(adata, None, "the data")[:, index])

    def gene_index(self, var_names: pd.Index) -> np.ndarray:
        """(n_genes,) positions of :attr:`gene_names` among ``var_names``.

        Raises
        ------
        GenevaeError
            If some modelled genes are missing from ``var_names``.
        """
        index = pd.Index(var_names.astype(str)).get_indexer(list(self.gene_names))
        missing = [name for name, i in zip(self.gene_names, index, strict=True) if i < 0]
        if missing:
            raise GenevaeError(
                f"{len(missing)} of the {self.n_genes} genes the model was trained on are missing "
                f"from the data ({shown_names(missing)}); embed data with the same gene "
                "identifiers as the training data (same annotation, symbols vs Ensembl ids)."
            )
        return index

    def transform_matrix(self, X: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
        """The model's target and library for rows over :attr:`gene_names`.

        Parameters
        ----------
        X
            (n_cells, n_genes) dense or CSR, columns in :attr:`gene_names` order
            (see :meth:`select_genes`).

        Returns
        -------
        x
            (n_cells, n_genes) float32: raw counts for NB/ZINB; for the Gaussian,
            ``(v - gene_mean) / gene_std`` with ``v = log1p(X / library * target_sum)``
            (``transform == "log1p"``) or ``v = X``.
        library
            (n_cells,) float32: row sums of ``X`` (counts), or ones for continuous
            values. A cell with library 0 has normalised values 0.
        """
        matrix = as_float32(X)
        if matrix.shape[1] != self.n_genes:
            raise GenevaeError(
                f"the matrix has {matrix.shape[1]} columns but the model has {self.n_genes} "
                "genes; select them with Preprocessor.select_genes first."
            )
        n_cells = matrix.shape[0]
        library = _row_sums(matrix) if self.uses_library else np.ones(n_cells, dtype=np.float32)
        if self.likelihood in _COUNT_LIKELIHOODS:
            return _dense(matrix), library
        values = _dense(
            _log1p_normalise(matrix, library, self.target_sum)
            if self.transform == "log1p"
            else matrix
        )
        x = (values - self.gene_mean) / self.gene_std  # (n_cells, n_genes)
        return x.astype(np.float32, copy=False), library

    def encode_conditions(self, obs: pd.DataFrame) -> np.ndarray:
        """(n_cells, n_condition_keys) int64 category codes of ``obs``.

        Raises
        ------
        GenevaeError
            A missing column, a missing value, or a category not seen in training.
        """
        codes = np.zeros((len(obs), len(self.condition_keys)), dtype=np.int64)
        for j, (key, categories) in enumerate(
            zip(self.condition_keys, self.condition_categories, strict=True)
        ):
            values = _condition_values(obs, key, "the data")
            codes[:, j] = pd.Index(categories).get_indexer(values)
            unseen = values[codes[:, j] < 0]
            if len(unseen):
                n_unseen = _count(len(unseen), "cell")
                raise GenevaeError(
                    f"condition column {key!r} has the value {unseen[0]!r} ({n_unseen}), which "
                    f"training never saw; known categories: {shown_names(categories)}. "
                    "The model can only "
                    "embed cells from conditions it was trained on."
                )
        return codes

    def to_state(self) -> dict[str, Any]:
        """Plain data and tensors, loadable with ``torch.load(weights_only=True)``."""

        def tensor(value: np.ndarray | None) -> torch.Tensor | None:
            return None if value is None else torch.from_numpy(value.copy())

        return {
            "format": _STATE_FORMAT,
            "gene_names": list(self.gene_names),
            "likelihood": self.likelihood,
            "transform": self.transform,
            "gene_mean": tensor(self.gene_mean),
            "gene_std": tensor(self.gene_std),
            "condition_keys": list(self.condition_keys),
            "condition_categories": [list(c) for c in self.condition_categories],
            "target_sum": float(self.target_sum),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Rebuild from :meth:`to_state` output."""
        if state.get("format") != _STATE_FORMAT:
            raise GenevaeError(
                f"the saved preprocessing has format {state.get('format')!r}, expected "
                f"{_STATE_FORMAT!r}; the checkpoint comes from another genevae version."
            )

        def array(value: Any) -> np.ndarray | None:
            if value is None:
                return None
            return np.asarray(value.numpy() if torch.is_tensor(value) else value, dtype=np.float32)

        return cls(
            gene_names=tuple(str(g) for g in state["gene_names"]),
            likelihood=str(state["likelihood"]),
            transform=str(state["transform"]),
            gene_mean=array(state["gene_mean"]),
            gene_std=array(state["gene_std"]),
            condition_keys=tuple(str(k) for k in state["condition_keys"]),
            condition_categories=tuple(
                tuple(str(c) for c in cats) for cats in state["condition_categories"]
            ),
            target_sum=float(state["target_sum"]),
        )


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


# --- matrix helpers ------------------------------------------------------------------------


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _row_sums(matrix) -> np.ndarray:
    """(n_cells,) float32 row sums, accumulated in float64."""
    return np.asarray(matrix.astype(np.float64).sum(axis=1)).ravel().astype(np.float32)


def _log1p_normalise(matrix, library: np.ndarray, target_sum: float):
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


def _column_mean_var(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population variance (ddof 0), accumulated in float64."""
    return mean_var_from_sums(*column_sums(matrix), matrix.shape[0])


def _nonzero_columns(matrix) -> np.ndarray:
    """(n_genes,) bool: whether each column holds a value other than 0."""
    if sp.issparse(matrix):
        stored = matrix.indices[matrix.data != 0]
        return np.bincount(stored, minlength=matrix.shape[1]) > 0
    return (matrix != 0).any(axis=0)


def _first_offending(matrix, is_bad) -> tuple[int, int, int, float] | None:
    """(count, row, column, value) of entries where ``is_bad`` holds; None if none.

    ``is_bad`` must be False at 0, so a CSR matrix's stored values suffice.
    """
    if sp.issparse(matrix):
        where = np.flatnonzero(is_bad(matrix.data))
        if not len(where):
            return None
        k = where[0]
        row = int(np.searchsorted(matrix.indptr, k, side="right") - 1)
        return len(where), row, int(matrix.indices[k]), float(matrix.data[k])
    where = np.flatnonzero(is_bad(matrix))
    if not len(where):
        return None
    row, column = divmod(int(where[0]), matrix.shape[1])
    return len(where), row, column, float(matrix[row, column])


def _matrix(adata: ad.AnnData, layer: str | None, source: str) -> np.ndarray | sp.csr_matrix:
    """``adata.layers[layer]`` or ``adata.X`` as float32 (dense or CSR); must be non-empty."""
    if layer is not None:
        if layer not in adata.layers:
            present = ", ".join(repr(k) for k in adata.layers) or "none"
            raise GenevaeError(f"{source} has no layer {layer!r} (layers: {present}); fix --layer.")
        X = adata.layers[layer]
    else:
        X = adata.X
    if X is None:
        raise GenevaeError(f"{source} has no expression matrix in X; choose a layer with --layer.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise GenevaeError(
            f"{source} holds an empty matrix ({adata.n_obs} cells x {adata.n_vars} genes); check "
            "the file and any filtering done before."
        )
    return as_float32(X)


# --- validation ----------------------------------------------------------------------------


def _is_not_count(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values) | (values < 0) | (values != np.round(values))


def looks_like_counts(X: np.ndarray | sp.spmatrix) -> bool:
    """Whether every value of ``X`` (dense or sparse) is a finite, non-negative integer."""
    return _first_offending(as_float32(X), _is_not_count) is None


Offending = tuple[int, int, int, float]  # (count, row, column, first value)


@dataclass(frozen=True)
class ValueSummary:
    """What the value checks need of a matrix, mergeable over chunks of rows.

    Attributes
    ----------
    non_finite, negative, fractional
        (count, row, column, value) of the first offending entry in reading order
        (row by row) and the number of such entries; None when there is none.
    minimum, maximum
        Over all entries, implicit zeros of a sparse matrix included.
    """

    non_finite: Offending | None
    negative: Offending | None
    fractional: Offending | None
    minimum: float
    maximum: float

    @property
    def is_counts(self) -> bool:
        return self.non_finite is None and self.negative is None and self.fractional is None

    @property
    def looks_log_normalised(self) -> bool:
        """Non-negative, not all integers, and max below :data:`LOG_NORMALISED_MAX`."""
        return not self.is_counts and self.minimum >= 0 and self.maximum < LOG_NORMALISED_MAX

    def log_normalised_note(self) -> str:
        return (
            f"They look already log-normalised (non-negative, non-integer, max "
            f"{self.maximum:.3g} < {LOG_NORMALISED_MAX:g})."
        )


def summarise_values(matrix, row_offset: int = 0) -> ValueSummary:
    """The :class:`ValueSummary` of ``matrix`` (dense or CSR) whose first row is ``row_offset``."""

    def first(is_bad) -> Offending | None:
        found = _first_offending(matrix, is_bad)
        return None if found is None else (found[0], found[1] + row_offset, found[2], found[3])

    with np.errstate(invalid="ignore"):
        return ValueSummary(
            non_finite=first(lambda v: ~np.isfinite(v)),
            negative=first(lambda v: v < 0),
            fractional=first(lambda v: v != np.round(v)),
            minimum=float(matrix.min()),
            maximum=float(matrix.max()),
        )


def merge_values(first: ValueSummary, later: ValueSummary) -> ValueSummary:
    """The summary of two consecutive row ranges (``first`` above ``later``)."""

    def merged(a: Offending | None, b: Offending | None) -> Offending | None:
        if a is None or b is None:
            return a or b
        return (a[0] + b[0], *a[1:])

    return ValueSummary(
        non_finite=merged(first.non_finite, later.non_finite),
        negative=merged(first.negative, later.negative),
        fractional=merged(first.fractional, later.fractional),
        minimum=min(first.minimum, later.minimum),
        maximum=max(first.maximum, later.maximum),
    )


def _check_values(
    values: ValueSummary,
    obs_names: pd.Index,
    var_names: pd.Index,
    likelihood: str,
    strict: bool,
    source: str,
) -> bool:
    """Raise or warn on NaN/inf, negatives and non-integers; return whether values are counts.

    Counts are non-negative and integer-valued.
    """

    def where(found: Offending) -> str:
        _, row, column, value = found
        return f"{value:g} for cell {obs_names[row]!r}, gene {var_names[column]!r}"

    non_finite = values.non_finite
    if non_finite is not None:
        raise GenevaeError(
            f"{source}: found {_count(non_finite[0], 'NaN or infinite value')} (first: "
            f"{where(non_finite)}). "
            "Replace them (e.g. with 0 if they mean 'not detected') or drop those cells or "
            "genes before training."
        )
    negative, fractional = values.negative, values.fractional
    is_counts = values.is_counts
    if likelihood not in _COUNT_LIKELIHOODS:
        return is_counts
    if negative is not None:
        raise GenevaeError(
            f"{source}: found {_count(negative[0], 'negative value')} (first: "
            f"{where(negative)}), but the {likelihood} likelihood models counts. Use --likelihood "
            "gaussian for continuous values, or --layer counts if the file keeps raw counts in "
            "a layer."
        )
    if fractional is not None:
        hint = f" {values.log_normalised_note()}" if values.looks_log_normalised else ""
        message = (
            f"{source}: found {_count(fractional[0], 'non-integer value')} (first: "
            f"{where(fractional)}), but the {likelihood} likelihood models raw counts.{hint} Use "
            "--layer counts for raw counts, or --likelihood gaussian."
        )
        if strict:
            raise GenevaeError(message)
        log.warning("%s Continuing because --strict is off.", message)
    return is_counts


def _obs_column(obs: pd.DataFrame, key: str, source: str, role: str) -> pd.Series:
    if key not in obs.columns:
        present = shown_names(obs.columns) if len(obs.columns) else "none"
        raise GenevaeError(
            f"{source}: there is no .obs column {key!r} for the {role} (columns: {present}); "
            "check the name, or add the column with --sample-sheet."
        )
    return obs[key]


def _condition_values(obs: pd.DataFrame, key: str, source: str) -> np.ndarray:
    """The column's values as strings; missing values raise."""
    column = _obs_column(obs, key, source, "condition")
    missing = column.isna().to_numpy()
    if missing.any():
        n_missing = _count(int(missing.sum()), "row")
        raise GenevaeError(
            f"{source}: condition column {key!r} has no value in {n_missing} (first: "
            f"{obs.index[int(np.argmax(missing))]!r}); fill them (e.g. 'unknown') or drop those "
            "cells."
        )
    return column.astype(str).to_numpy()


def _fit_categories(obs: pd.DataFrame, key: str, source: str) -> tuple[str, ...]:
    values = _condition_values(obs, key, source)
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
            _count(int(missing.sum()), "cell"),
            key,
        )
    labels = column.astype(str).to_numpy().astype(object)
    labels[missing] = "missing"
    n_classes = len(set(labels[~missing]))
    if n_classes < 2:
        raise GenevaeError(
            f"{source}: {role} column {key!r} has {_count(n_classes, 'class', 'classes')}; "
            f"{role} need at least 2 classes to stratify the split, probe the latent space or "
            "score mixing. Choose another column or omit the option."
        )
    return labels.astype(str)


def _check_split_size(n_cells: int, val_fraction: float, source: str) -> None:
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
        f"{source}: {_count(n_cells, 'cell')} remain after filtering; "
        f"val_fraction={val_fraction:g} puts {n_val} in validation and {n_train} in training, "
        "but each needs at least "
        f"{MIN_SPLIT_CELLS}: {fix}."
    )


# --- fitting -------------------------------------------------------------------------------


def top_variable_genes(variance: np.ndarray, n_top_genes: int) -> np.ndarray:
    """Positions (sorted) of the ``n_top_genes`` highest ``variance`` values; ties keep the earlier."""
    order = np.argsort(-variance, kind="stable")
    return np.sort(order[:n_top_genes])


def _in_memory_variance(matrix, on_log1p: bool, target_sum: float) -> np.ndarray:
    """Per-column variance of ``log1p(x / library * target_sum)`` (library = row sum)
    when ``on_log1p``, else of the values themselves."""
    values = _log1p_normalise(matrix, _row_sums(matrix), target_sum) if on_log1p else matrix
    return _column_mean_var(values)[1]


def fit_categories(obs: pd.DataFrame, condition_keys: tuple[str, ...], source: str):
    """The categories of each condition key (checked: present, complete, ≥ 2 categories)."""
    return tuple(_fit_categories(obs, key, source) for key in condition_keys)


def check_likelihood(likelihood: str) -> None:
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
    return is_counts or likelihood in _COUNT_LIKELIHOODS


def uses_library(likelihood: str, transform: str) -> bool:
    """Whether cells are normalised by their library (so empty cells are dropped)."""
    return likelihood in _COUNT_LIKELIHOODS or transform == "log1p"


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
            _count(len(expressed) - len(genes), "gene"),
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
            f"{source}: {_count(n_empty, 'cell')} without counts in the modelled genes "
            f"(first: {obs_names[int(np.argmin(keep))]!r})"
        )
        if strict:
            raise GenevaeError(message + "; remove them, or drop --strict to skip them.")
        log.info("%s; dropped them.", message)
    if not keep.any():
        raise GenevaeError(f"{source}: no cell has counts in the modelled genes.")


def standardisation(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gene_mean, gene_std)``; a gene with sd below :data:`MIN_GENE_STD` is not scaled."""
    std = np.sqrt(variance)
    return mean, np.where(std < MIN_GENE_STD, 1.0, std)


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
    matrix = _matrix(adata, layer, source)
    check_unique_names(adata.var_names, "gene", source)
    values = summarise_values(matrix)
    is_counts = _check_values(values, adata.obs_names, adata.var_names, likelihood, strict, source)
    transform = choose_transform(likelihood, is_counts, values, source)
    on_log1p = selects_on_log1p(likelihood, is_counts)
    genes = choose_genes(
        _nonzero_columns(matrix), n_top_genes, on_log1p,
        lambda genes: _in_memory_variance(matrix[:, genes], on_log1p, DEFAULT_TARGET_SUM), source,
    )
    selected = matrix[:, genes]

    keep = np.ones(adata.n_obs, dtype=bool)
    if uses_library(likelihood, transform):
        keep = _row_sums(selected) > 0
        check_kept_cells(keep, adata.obs_names, strict, source)

    gene_mean = gene_std = None
    if likelihood == "gaussian":
        rows = selected[keep]
        values = (
            _log1p_normalise(rows, _row_sums(rows), DEFAULT_TARGET_SUM)
            if transform == "log1p"
            else rows
        )
        gene_mean, gene_std = standardisation(*_column_mean_var(values))
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
    _check_split_size(int(keep.sum()), config.val_fraction, source)
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
