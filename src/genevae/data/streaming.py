"""Prepare a backed ``.h5ad`` for training without loading its matrix.

One streaming pass (:func:`scan`) gathers everything the preprocessing needs:
the value checks, each cell's library (total counts), each gene's count of
non-zero cells, and per-gene sums and sums of squares of the values and of their
log1p-normalised version (mean and variance for the highly-variable-gene selection
and the Gaussian standardisation). :func:`prepare_backed` fits the same
:class:`~genevae.data.preprocessor.Preprocessor` as :func:`~genevae.data.preprocess.prepare`
from those sums. Only when ``n_top_genes`` drops expressed genes do the library over
the modelled genes and the standardisation change; a second pass over the kept
genes then computes them.

The result, :class:`BackedData`, holds the small per-cell data in memory (codes,
labels, names) and serves :class:`~genevae.data.chunked.ChunkedBatches` that read
and transform ``chunk_size`` cells at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genevae.config import DataConfig
from genevae.data.backed import BackedCsr
from genevae.data.categories import fit_categories, obs_labels
from genevae.data.chunked import ChunkedBatches, LoadedCells
from genevae.data.normalisation import (
    DEFAULT_TARGET_SUM,
    column_sums,
    log1p_normalise,
    mean_var_from_sums,
    row_totals,
    standardisation,
)
from genevae.data.preprocess import (
    check_kept_cells,
    check_likelihood,
    check_split_size,
    choose_genes,
    choose_transform,
    selects_on_log1p,
    uses_library,
)
from genevae.data.preprocessor import Preprocessor
from genevae.data.values import ValueSummary, check_values, merge_values, summarise_values
from genevae.errors import GenevaeError

__all__ = ["MatrixScan", "BackedData", "scan", "prepare_backed", "open_backed", "backed_cells"]

log = logging.getLogger(__name__)


@dataclass
class MatrixScan:
    """What one pass over a matrix gathers (all genes, all cells).

    Attributes
    ----------
    n_cells
        Rows scanned.
    values
        The value checks' summary.
    row_sums
        (n_cells,) float32 library: total of each cell over all genes.
    n_nonzero
        (n_genes,) cells with a non-zero value in each gene.
    value_sum, value_square_sum
        (n_genes,) float64 sums of the values and of their squares.
    lognorm_sum, lognorm_square_sum
        The same of ``log1p(x / library * target_sum)``.
    """

    n_cells: int
    values: ValueSummary
    row_sums: np.ndarray
    n_nonzero: np.ndarray
    value_sum: np.ndarray
    value_square_sum: np.ndarray
    lognorm_sum: np.ndarray
    lognorm_square_sum: np.ndarray

    @property
    def is_counts(self) -> bool:
        return self.values.is_counts


def scan(matrix: BackedCsr, chunk_size: int, target_sum: float = DEFAULT_TARGET_SUM) -> MatrixScan:
    """One pass over ``matrix``, ``chunk_size`` rows at a time (see :class:`MatrixScan`)."""
    n_genes = matrix.n_genes
    values: ValueSummary | None = None
    row_sums = np.zeros(matrix.n_cells, dtype=np.float32)
    n_nonzero = np.zeros(n_genes, dtype=np.int64)
    sums = [np.zeros(n_genes) for _ in range(4)]
    for start, rows in matrix.chunks(chunk_size):
        summary = summarise_values(rows, start)
        values = summary if values is None else merge_values(values, summary)
        library = row_totals(rows)
        row_sums[start : start + rows.shape[0]] = library
        n_nonzero += np.bincount(rows.indices[rows.data != 0], minlength=n_genes)
        with np.errstate(invalid="ignore", divide="ignore"):
            lognorm = log1p_normalise(rows, library, target_sum)
        for total, part in zip(sums, (*column_sums(rows), *column_sums(lognorm)), strict=True):
            total += part
    if values is None:
        raise GenevaeError(f"{matrix.path}: {matrix.name} holds no cells; there is nothing to model.")
    return MatrixScan(matrix.n_cells, values, row_sums, n_nonzero, *sums)


def _selected_pass(
    matrix: BackedCsr, genes: np.ndarray, chunk_size: int, count_like: bool, log1p: bool,
    gaussian: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second pass over the modelled genes: the kept cells and the Gaussian sums over them."""
    keep = np.ones(matrix.n_cells, dtype=bool)
    total, total_square = np.zeros(len(genes)), np.zeros(len(genes))
    for start, rows in matrix.chunks(chunk_size):
        selected = rows[:, genes]
        library = row_totals(selected)
        if count_like:
            keep[start : start + rows.shape[0]] = library > 0
        if gaussian:
            kept = keep[start : start + rows.shape[0]]
            part = selected[kept]
            if log1p:
                part = log1p_normalise(part, library[kept], DEFAULT_TARGET_SUM)
            block, block_square = column_sums(part)
            total += block
            total_square += block_square
    return keep, total, total_square


@dataclass
class BackedData:
    """Cells of a backed ``.h5ad``, ready for chunked training (the counterpart of
    :class:`~genevae.data.preprocess.PreparedData`).

    Attributes
    ----------
    matrix
        The open backed matrix.
    preprocessor
        The fitted preprocessing.
    genes
        (n_genes,) columns of the file in model order.
    rows
        (n_cells,) sorted file rows of the kept cells.
    conditions
        (n_cells, n_condition_keys) int64 codes.
    labels, obs_names, n_categories
        As in :class:`~genevae.data.preprocess.PreparedData`.
    chunk_size
        Cells read from disk at once.
    """

    matrix: BackedCsr
    preprocessor: Preprocessor
    genes: np.ndarray
    rows: np.ndarray
    conditions: torch.Tensor
    labels: np.ndarray | None
    obs_names: np.ndarray
    n_categories: tuple[int, ...]
    chunk_size: int

    @property
    def n_cells(self) -> int:
        return len(self.rows)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    def read_cells(self, cells: np.ndarray) -> sp.csr_matrix:
        """The raw values of sorted ``cells`` (prepared-cell indices) over the modelled genes."""
        rows = self.matrix.take(self.rows[cells], self.chunk_size)
        if len(self.genes) == self.matrix.n_genes and np.array_equal(
            self.genes, np.arange(self.matrix.n_genes)
        ):
            return rows
        return rows[:, self.genes]

    def tensors(
        self, cells: np.ndarray, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model-ready ``(x, library)`` of sorted ``cells``, (n, n_genes) and (n,)."""
        return self._model_ready(self.read_cells(cells), device)

    def load(self, cells: np.ndarray, device: torch.device | str | None = None) -> LoadedCells:
        """Read sorted ``cells`` from disk once; the result gives any of them model-ready
        (rows index ``cells``), a batch at a time, so the load itself stays sparse."""
        raw = self.read_cells(cells)
        return lambda rows: self._model_ready(raw[rows.numpy()], device)

    def _model_ready(
        self, raw: sp.csr_matrix, device: torch.device | str | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, library = self.preprocessor.transform_matrix(raw)
        x, library = torch.from_numpy(x), torch.from_numpy(library)
        if device is None or torch.device(device).type == "cpu":
            return x, library
        if torch.device(device).type == "cuda":
            # page-locked host memory lets the copy run without blocking the host
            x, library = x.pin_memory(), library.pin_memory()
        return x.to(device, non_blocking=True), library.to(device, non_blocking=True)

    def batches(
        self,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> ChunkedBatches:
        """Batches over the sorted cells ``indices``, streamed ``chunk_size`` at a time."""
        indices = np.asarray(indices, dtype=np.int64)
        device = torch.device(device) if device is not None else torch.device("cpu")
        return ChunkedBatches(
            lambda positions: self.load(indices[positions], device),
            self.conditions[torch.as_tensor(indices)].to(device),
            batch_size, shuffle, seed, self.chunk_size,
        )


def open_backed(config: DataConfig) -> BackedCsr:
    """Open ``config.path`` for streaming, refusing options that need the whole matrix."""
    if config.transpose:
        raise GenevaeError("--transpose applies to .csv/.tsv/.txt tables only; --backed streams "
                           ".h5ad files, whose cells are in rows.")
    if config.sample_sheet is not None:
        raise GenevaeError("--sample-sheet cannot be combined with --backed: add the sheet's "
                           "columns to the .h5ad's obs, or drop --backed.")
    return BackedCsr(config.path, config.layer)


def prepare_backed(
    matrix: BackedCsr, matrix_scan: MatrixScan, config: DataConfig, likelihood: str
) -> tuple[Preprocessor, BackedData]:
    """Fit the preprocessing of a backed matrix from its scan; the same checks, choices and
    messages as :func:`~genevae.data.preprocess.prepare`."""
    source = config.path
    check_likelihood(likelihood)
    obs = matrix.read_obs()
    var_names = matrix.read_var_names()
    labels = obs_labels(obs, config.label_key, source) if config.label_key else None
    keys = tuple(config.condition_keys)
    categories = fit_categories(obs, keys, source)
    values = matrix_scan.values
    is_counts = check_values(values, obs.index, var_names, likelihood, config.strict, source)
    transform = choose_transform(likelihood, is_counts, values, source)
    on_log1p = selects_on_log1p(likelihood, is_counts)
    log1p = transform == "log1p"

    def variance_of(genes: np.ndarray) -> np.ndarray:
        total, square = ((matrix_scan.lognorm_sum, matrix_scan.lognorm_square_sum) if on_log1p
                         else (matrix_scan.value_sum, matrix_scan.value_square_sum))
        return mean_var_from_sums(total[genes], square[genes], matrix_scan.n_cells)[1]

    expressed = matrix_scan.n_nonzero > 0
    genes = choose_genes(expressed, config.n_top_genes, on_log1p, variance_of, source)
    count_like = uses_library(likelihood, transform)
    gaussian = likelihood == "gaussian"
    if len(genes) == int(expressed.sum()):
        # dropped genes are zero everywhere: the scan's libraries and sums hold as they are
        keep = matrix_scan.row_sums > 0 if count_like else np.ones(matrix.n_cells, dtype=bool)
        total = (matrix_scan.lognorm_sum if log1p else matrix_scan.value_sum)[genes]
        total_square = (matrix_scan.lognorm_square_sum if log1p
                        else matrix_scan.value_square_sum)[genes]
    else:
        log.info("%s: a second pass over the %d kept genes for their libraries%s.", source,
                 len(genes), " and standardisation" if gaussian else "")
        keep, total, total_square = _selected_pass(matrix, genes, config.chunk_size, count_like,
                                                   log1p, gaussian)
    if count_like:
        check_kept_cells(keep, obs.index, config.strict, source)
    n_kept = int(keep.sum())
    gene_mean = gene_std = None
    if gaussian:
        gene_mean, gene_std = standardisation(*mean_var_from_sums(total, total_square, n_kept))
    preprocessor = Preprocessor(
        gene_names=tuple(var_names[genes].astype(str)),
        likelihood=likelihood,
        transform=transform,
        gene_mean=gene_mean,
        gene_std=gene_std,
        condition_keys=keys,
        condition_categories=categories,
        target_sum=DEFAULT_TARGET_SUM,
    )
    check_split_size(n_kept, config.val_fraction, source)
    kept_obs = obs[keep]
    data = BackedData(
        matrix=matrix,
        preprocessor=preprocessor,
        genes=genes,
        rows=np.flatnonzero(keep),
        conditions=torch.from_numpy(preprocessor.encode_conditions(kept_obs)),
        labels=None if labels is None else labels[keep],
        obs_names=np.asarray(kept_obs.index, dtype=str),
        n_categories=tuple(len(c) for c in categories),
        chunk_size=config.chunk_size,
    )
    log.info("%s: streaming %d cells x %d genes for the %s likelihood, %d cells per chunk.",
             source, data.n_cells, data.n_genes, likelihood, config.chunk_size)
    return preprocessor, data



def backed_cells(
    path: str, layer: str | None, preprocessor: Preprocessor, chunk_size: int
) -> tuple[pd.DataFrame, BackedData]:
    """Every cell of a backed ``.h5ad``, prepared with a fitted ``preprocessor`` (for
    embedding and evaluation): ``(obs, data)``; no cell is dropped.

    Raises
    ------
    GenevaeError
        As :class:`~genevae.data.backed.BackedCsr`, for missing modelled genes, and for
        condition values the preprocessor has not seen.
    """
    matrix = BackedCsr(path, layer)
    obs = matrix.read_obs()
    genes = preprocessor.gene_index(matrix.read_var_names())
    data = BackedData(
        matrix=matrix,
        preprocessor=preprocessor,
        genes=genes,
        rows=np.arange(matrix.n_cells),
        conditions=torch.from_numpy(preprocessor.encode_conditions(obs)),
        labels=None,
        obs_names=np.asarray(obs.index, dtype=str),
        n_categories=tuple(len(c) for c in preprocessor.condition_categories),
        chunk_size=chunk_size,
    )
    return obs, data
