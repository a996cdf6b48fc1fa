"""Read an expression matrix from disk into an AnnData, cells (or samples) in rows.

Supported inputs:

- ``.h5ad`` (optionally one of its ``.layers`` as the matrix);
- delimited text, ``.csv`` / ``.tsv`` / ``.txt``, each optionally ``.gz``: names in the
  first column and the first row; the orientation (genes in rows or in columns) is
  detected and logged, and ``transpose=True`` flips it;
- a 10x Genomics folder (``matrix.mtx``, ``features.tsv`` or ``genes.tsv``,
  ``barcodes.tsv``, each optionally ``.gz``), or the path of its ``matrix.mtx``.

Every reader returns ``X`` as float32 (dense, or scipy CSR when the file is sparse)
with string ``obs_names`` and ``var_names``. A sample sheet (CSV) can add per-sample
columns to ``.obs``. Problems with the file raise :class:`~genevae.errors.GenevaeError`
naming the file, the row, the column or the value, and the fix.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from genevae.data.formats import SUPPORTED_INPUTS, find_file, input_kind, strip_gz
from genevae.data.messages import shown_names
from genevae.data.orientation import detect_orientation
from genevae.errors import GenevaeError
from genevae.files import atomic_write

__all__ = [
    "read",
    "write_h5ad",
    "as_float32",
    "check_unique_names",
]

log = logging.getLogger(__name__)

_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t"}


def read(
    path: str | os.PathLike[str],
    layer: str | None = None,
    transpose: bool = False,
    sample_sheet: str | os.PathLike[str] | None = None,
) -> ad.AnnData:
    """Read an expression matrix with cells or samples in rows and genes in columns.

    Parameters
    ----------
    path
        ``.h5ad``, ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``), a 10x folder or
        its ``matrix.mtx(.gz)``.
    layer
        For ``.h5ad``: model ``adata.layers[layer]`` (e.g. ``"counts"``) instead of ``X``.
    transpose
        For text tables: flip the detected orientation.
    sample_sheet
        CSV (or TSV) with one row per sample; its first column holds the sample
        names, its other columns are added to ``.obs`` as categories.

    Returns
    -------
    anndata.AnnData
        ``X`` of shape (n_cells, n_genes), float32, dense or scipy CSR.

    Raises
    ------
    GenevaeError
        Missing, unsupported, corrupt or empty input; non-numeric or duplicate
        entries; a missing layer; samples absent from the sample sheet.
    """
    path = Path(path)
    if not path.exists():
        raise GenevaeError(
            f"{path} does not exist; check the path (supported: {SUPPORTED_INPUTS})."
        )
    kind = input_kind(path)
    if layer is not None and kind != "h5ad":
        raise GenevaeError(f"--layer {layer!r} applies to .h5ad files only; {path} has no layers.")
    if transpose and kind != "text":
        raise GenevaeError(
            f"--transpose applies to .csv/.tsv/.txt tables only; {path} has a fixed orientation."
        )
    if kind == "h5ad":
        adata = _read_h5ad(path, layer)
    elif kind == "text":
        adata = _read_text(path, transpose)
    else:
        adata = _read_10x(path)
    adata = _finish(adata, path)
    if sample_sheet is not None:
        adata = _join_sample_sheet(adata, Path(sample_sheet), path)
    return adata


def write_h5ad(adata: ad.AnnData, path: str | os.PathLike[str]) -> None:
    """Write ``adata`` to ``path`` as ``.h5ad`` atomically (temporary file, then rename)."""
    with atomic_write(path) as tmp:
        adata.write_h5ad(tmp)


# --- .h5ad -------------------------------------------------------------------------------


def _read_h5ad(path: Path, layer: str | None) -> ad.AnnData:
    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise GenevaeError(
            f"{path} is corrupt or truncated and cannot be read as .h5ad ({exc}). "
            "Re-export or re-download the file."
        ) from None
    if layer is not None:
        if layer not in adata.layers:
            present = ", ".join(repr(k) for k in adata.layers) or "none"
            raise GenevaeError(
                f"{path} has no layer {layer!r} (layers present: {present}); choose one of "
                "them with --layer, or omit --layer to use X."
            )
        adata.X = adata.layers[layer]
    elif adata.X is None:
        present = ", ".join(repr(k) for k in adata.layers) or "none"
        raise GenevaeError(
            f"{path} has no X matrix; choose a layer with --layer (layers: {present})."
        )
    return adata


# --- delimited text ------------------------------------------------------------------------


def _separator(path: Path) -> str:
    """Comma for .csv, tab for .tsv; for .txt, whichever the first line uses."""
    suffix = Path(strip_gz(path.name)).suffix.lower()
    if suffix in _TEXT_SEPARATORS:
        return _TEXT_SEPARATORS[suffix]
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    return r"\s+"


def _read_text(path: Path, transpose: bool) -> ad.AnnData:
    sep = _separator(path)
    try:
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
        table = pd.read_csv(path, sep=sep, header=None, skiprows=1, index_col=0, dtype={0: str})
    except pd.errors.EmptyDataError:
        raise GenevaeError(f"{path} is empty or has only a header; it holds no matrix.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise GenevaeError(
            f"{path} cannot be parsed as a {_sep_name(sep)}-separated table ({exc}). Check "
            "that every row has the same number of fields."
        ) from None
    table.columns = _column_names(header.iloc[0].tolist(), table.shape[1], path)
    if table.index.isna().any():
        position = int(np.flatnonzero(table.index.isna())[0]) + 2
        raise GenevaeError(
            f"{path}: line {position} has no name in the first column; name every row."
        )
    table.index = table.index.astype(str)
    _check_numeric(table, path)
    genes_in_rows, reason = detect_orientation(table.index, table.columns)
    log.info(
        "%s: assumed genes in %s because %s; --transpose (transpose=True) flips this.",
        path,
        "rows" if genes_in_rows else "columns",
        reason,
    )
    if transpose:
        genes_in_rows = not genes_in_rows
        log.info(
            "%s: flipped on request: genes in %s.", path, "rows" if genes_in_rows else "columns"
        )
    values = table.to_numpy(dtype=np.float32)
    if genes_in_rows:
        return _anndata(np.ascontiguousarray(values.T), table.columns, table.index)
    return _anndata(values, table.index, table.columns)


def _sep_name(sep: str) -> str:
    return {",": "comma", "\t": "tab"}.get(sep, "whitespace")


def _column_names(fields: list[str], n_columns: int, path: Path) -> list[str]:
    """The column names from the header, with or without a corner cell."""
    if len(fields) == n_columns + 1:
        return [str(name) for name in fields[1:]]
    if len(fields) == n_columns:  # R's write.table leaves out the corner cell
        return [str(name) for name in fields]
    raise GenevaeError(
        f"{path}: the first row has {len(fields)} names but the rows below have {n_columns} "
        "values after the row name; the header must name every column."
    )


def _check_numeric(table: pd.DataFrame, path: Path) -> None:
    """Raise naming the first non-numeric cell, in reading order (row by row)."""
    bad = np.zeros(table.shape, dtype=bool)
    for j in range(table.shape[1]):
        column = table.iloc[:, j]
        if pd.api.types.is_bool_dtype(column.dtype):
            bad[:, j] = True
        elif not pd.api.types.is_numeric_dtype(column.dtype):
            bad[:, j] = (pd.to_numeric(column, errors="coerce").isna() & column.notna()).to_numpy()
    if not bad.any():
        return
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    j = int(np.flatnonzero(bad[row])[0])
    raise GenevaeError(
        f"{path}: the value {table.iat[row, j]!r} in row {table.index[row]!r}, column "
        f"{table.columns[j]!r} is not a number. Every cell outside the first row and first "
        "column must be numeric: check the separator and decimal marks, and move text "
        "columns (annotations) to a --sample-sheet."
    )


# --- 10x folder --------------------------------------------------------------------------


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _read_names(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", header=None, dtype=str, compression="infer")
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        EOFError,
        OSError,
    ) as exc:
        raise GenevaeError(
            f"{path} cannot be read as a tab-separated list of names ({exc})."
        ) from None


def _read_10x(path: Path) -> ad.AnnData:
    """A 10x folder: MatrixMarket genes x cells, transposed to cells x genes.

    ``var_names`` are the gene ids of the first column of ``features.tsv`` (unique,
    unlike symbols); the symbols go to ``var["gene_symbols"]``.
    """
    if path.is_dir():
        folder, prefix = path, ""
        matrix_path = find_file(folder, prefix, ("matrix.mtx",))
    else:
        folder, matrix_path = path.parent, path
        stem = strip_gz(path.name)
        prefix = stem[: -len("matrix.mtx")] if stem.endswith("matrix.mtx") else ""
    features_path = find_file(folder, prefix, ("features.tsv", "genes.tsv"))
    barcodes_path = find_file(folder, prefix, ("barcodes.tsv",))
    for what, found in (
        ("features.tsv or genes.tsv", features_path),
        ("barcodes.tsv", barcodes_path),
    ):
        if found is None:
            raise GenevaeError(
                f"{folder} has {matrix_path.name} but no {prefix}{what} (optionally .gz); "
                "a 10x matrix needs its gene and barcode lists in the same folder."
            )
    try:
        with _open_binary(matrix_path) as handle:
            matrix = scipy.io.mmread(handle)
    except (ValueError, OSError, EOFError, IndexError, TypeError) as exc:
        raise GenevaeError(
            f"{matrix_path} is corrupt or truncated and cannot be read as MatrixMarket "
            f"({exc}). Re-export or re-download it."
        ) from None
    features, barcodes = _read_names(features_path), _read_names(barcodes_path)
    n_genes, n_cells = matrix.shape
    if len(features) != n_genes or len(barcodes) != n_cells:
        raise GenevaeError(
            f"{matrix_path} is {n_genes} genes x {n_cells} cells but {features_path.name} lists "
            f"{len(features)} genes and {barcodes_path.name} {len(barcodes)} barcodes; the "
            "three files must come from the same export."
        )
    adata = _anndata(sp.csr_matrix(matrix.T), barcodes.iloc[:, 0], features.iloc[:, 0])
    if features.shape[1] > 1:
        adata.var["gene_symbols"] = features.iloc[:, 1].to_numpy()
    if features.shape[1] > 2:
        adata.var["feature_types"] = pd.Categorical(features.iloc[:, 2].to_numpy())
    return adata


# --- common finish -------------------------------------------------------------------------


def _anndata(X, obs_names, var_names) -> ad.AnnData:
    adata = ad.AnnData(X)
    adata.obs_names = pd.Index(np.asarray(obs_names, dtype=str))
    adata.var_names = pd.Index(np.asarray(var_names, dtype=str))
    return adata


def as_float32(X) -> np.ndarray | sp.csr_matrix:
    """``X`` as float32: scipy CSR if sparse (any format), else a dense array."""
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    return np.asarray(X, dtype=np.float32)


def _finish(adata: ad.AnnData, path: Path) -> ad.AnnData:
    """float32 X, string names, and checks common to every format."""
    n_cells, n_genes = adata.shape
    if n_cells == 0 or n_genes == 0:
        raise GenevaeError(
            f"{path} holds an empty matrix ({n_cells} cells x {n_genes} genes); check that "
            "it is the right file and was exported completely."
        )
    adata.X = as_float32(adata.X)
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = adata.var_names.astype(str)
    check_unique_names(adata.var_names, "gene", path)
    check_unique_names(adata.obs_names, "sample", path)
    log.info(
        "%s: read %d cells/samples x %d genes (%s).",
        path,
        n_cells,
        n_genes,
        "sparse" if sp.issparse(adata.X) else "dense",
    )
    return adata


def check_unique_names(names: pd.Index, what: str, source: str | os.PathLike[str]) -> None:
    """Raise :class:`GenevaeError` naming a few ``what`` names that occur more than once."""
    duplicated = names[names.duplicated()].unique()
    if len(duplicated):
        raise GenevaeError(
            f"{source}: {what} names occur more than once: {shown_names(duplicated)} "
            f"({len(duplicated)} in all); each {what} needs a unique name: remove or merge the "
            "duplicates, or make the names unique (e.g. adata.var_names_make_unique() / "
            "obs_names_make_unique())."
        )


def _join_sample_sheet(adata: ad.AnnData, sheet_path: Path, path: Path) -> ad.AnnData:
    """Add the sheet's columns to ``.obs`` as categories, matched on the first column."""
    if not sheet_path.is_file():
        raise GenevaeError(f"sample sheet {sheet_path} does not exist; check the path.")
    sep = "\t" if Path(strip_gz(sheet_path.name)).suffix.lower() in (".tsv", ".txt") else ","
    try:
        sheet = pd.read_csv(sheet_path, sep=sep, index_col=0, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise GenevaeError(
            f"sample sheet {sheet_path} cannot be parsed as a table ({exc})."
        ) from None
    sheet.index = sheet.index.astype(str)
    check_unique_names(sheet.index, "sample", sheet_path)
    missing = adata.obs_names[~adata.obs_names.isin(sheet.index)]
    if len(missing):
        raise GenevaeError(
            f"sample sheet {sheet_path} lacks {len(missing)} of the {adata.n_obs} samples in "
            f"{path} ({shown_names(missing)}); add a row for each sample, with its name in the "
            "first column as in the matrix (or pass --transpose if samples and genes are "
            "swapped)."
        )
    n_extra = int((~sheet.index.isin(adata.obs_names)).sum())
    if n_extra:
        log.info(
            "sample sheet %s: %d rows name samples not in %s; ignored.", sheet_path, n_extra, path
        )
    rows = sheet.loc[adata.obs_names]
    for column in sheet.columns:
        if column in adata.obs.columns:
            log.info("sample sheet %s: column %r replaces the one in %s.", sheet_path, column, path)
        adata.obs[column] = pd.Categorical(rows[column].to_numpy())
    return adata
