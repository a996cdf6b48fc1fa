"""The fitted preprocessing (:class:`Preprocessor`): which genes, which transform,
which conditions; saved in checkpoints and applied unchanged to new data at embed
time. :func:`genevae.data.preprocess.fit_preprocessor` fits it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genevae.config import LIKELIHOODS
from genevae.data.categories import condition_values
from genevae.data.io import as_float32
from genevae.data.messages import pluralise, shown_names
from genevae.data.normalisation import DEFAULT_TARGET_SUM, log1p_normalise, row_totals
from genevae.data.values import COUNT_LIKELIHOODS
from genevae.errors import GenevaeError

__all__ = ["Preprocessor", "expression_matrix", "uses_library", "TRANSFORMS"]

#: ``"log1p"``: counts, library-normalised then log1p. ``"none"``: values used as they are.
TRANSFORMS = ("log1p", "none")
_STATE_FORMAT = "genevae-preprocessor-1"


def uses_library(likelihood: str, transform: str) -> bool:
    """Whether cells are normalised by their library, the row sum of their counts (so
    empty cells are dropped); else every cell's library is 1."""
    return likelihood in COUNT_LIKELIHOODS or transform == "log1p"


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
        return uses_library(self.likelihood, self.transform)

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
        return as_float32(expression_matrix(adata, None, "the data")[:, index])

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
        library = row_totals(matrix) if self.uses_library else np.ones(n_cells, dtype=np.float32)
        if self.likelihood in COUNT_LIKELIHOODS:
            return _dense(matrix), library
        values = _dense(
            log1p_normalise(matrix, library, self.target_sum)
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
            values = condition_values(obs, key, "the data")
            codes[:, j] = pd.Index(categories).get_indexer(values)
            unseen = values[codes[:, j] < 0]
            if len(unseen):
                n_unseen = pluralise(len(unseen), "cell")
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


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def expression_matrix(
    adata: ad.AnnData, layer: str | None, source: str
) -> np.ndarray | sp.csr_matrix:
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
