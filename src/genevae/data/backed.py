"""Rows of a CSR matrix stored in an ``.h5ad`` file, read in contiguous slices with h5py.

An ``.h5ad`` keeps a CSR matrix as three datasets: ``data`` and ``indices`` (one
entry per stored value) and ``indptr`` (n_cells + 1 offsets). Rows ``[start, stop)``
are the stored values ``indptr[start]`` to ``indptr[stop]``, one contiguous read
each, so the memory of a read is set by the number of rows asked for, never by the
size of the file. ``.obs`` and ``.var`` (small) are read whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from genevae.data.io import check_unique_names
from genevae.errors import GenevaeError

__all__ = ["BackedCsr", "CSR_ENCODING"]

#: anndata's ``encoding-type`` of a CSR matrix.
CSR_ENCODING = "csr_matrix"
_CSC_ENCODING = "csc_matrix"


def _decoded(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class BackedCsr:
    """A CSR matrix in an ``.h5ad`` file (``X`` or ``layers[layer]``), read by row ranges.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Read ``layers[layer]`` instead of ``X``.

    Raises
    ------
    GenevaeError
        The file is missing or not an ``.h5ad``, the matrix is dense or CSC (rows
        cannot be read in contiguous slices), or the layer does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], layer: str | None = None) -> None:
        self.path = Path(path)
        self.layer = layer
        if not self.path.is_file():
            raise GenevaeError(f"{self.path} does not exist; check the path.")
        if self.path.suffix.lower() != ".h5ad":
            raise GenevaeError(
                f"--backed streams .h5ad files only, and {self.path} is not one; convert it "
                "to .h5ad with a CSR X, or drop --backed to read it into memory."
            )
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise GenevaeError(
                f"{self.path} is corrupt or not an HDF5 file and cannot be read as .h5ad ({exc})."
            ) from None
        try:
            self._group = self._matrix_group()
            self._data = self._group["data"]
            self._indices = self._group["indices"]
            self.indptr = np.asarray(self._group["indptr"][:], dtype=np.int64)  # (n_cells + 1,)
            self.n_cells, self.n_genes = (int(n) for n in self._group.attrs["shape"])
        except Exception:
            self._file.close()
            raise

    @property
    def name(self) -> str:
        """The matrix, for messages: ``X`` or ``layers/<layer>``."""
        return "X" if self.layer is None else f"layers/{self.layer}"

    def _matrix_group(self) -> h5py.Group:
        where = f"{self.path} {self.name}"
        if self.layer is not None:
            layers = self._file.get("layers")
            if layers is None or self.layer not in layers:
                present = ", ".join(repr(k) for k in (layers or {})) or "none"
                raise GenevaeError(
                    f"{self.path} has no layer {self.layer!r} (layers present: {present}); "
                    "choose one of them with --layer, or omit --layer to use X."
                )
            node = layers[self.layer]
        else:
            node = self._file.get("X")
            if node is None:
                raise GenevaeError(f"{self.path} has no X matrix; choose a layer with --layer.")
        if isinstance(node, h5py.Dataset):
            raise GenevaeError(
                f"{where} is a dense matrix; --backed streams sparse CSR matrices only. Either "
                "drop --backed (the matrix is read into memory), or rewrite the file with a CSR "
                "matrix: adata.X = scipy.sparse.csr_matrix(adata.X); adata.write_h5ad(path)."
            )
        encoding = _decoded(node.attrs.get("encoding-type", ""))
        if encoding == _CSC_ENCODING:
            raise GenevaeError(
                f"{where} is stored CSC (column by column), so cells cannot be read in "
                "contiguous chunks; rewrite it as CSR (adata.X = adata.X.tocsr(); "
                "adata.write_h5ad(path)) or drop --backed."
            )
        if encoding != CSR_ENCODING or not {"data", "indices", "indptr"} <= set(node):
            raise GenevaeError(
                f"{where} is not a CSR matrix anndata can read (encoding-type {encoding!r}); "
                "rewrite the file with anndata, X as scipy.sparse.csr_matrix."
            )
        return node

    def read_obs(self) -> pd.DataFrame:
        """``.obs`` (one row per cell), index as strings; duplicate names raise."""
        obs = ad.io.read_elem(self._file["obs"])
        obs.index = obs.index.astype(str)
        check_unique_names(obs.index, "sample", self.path)
        if len(obs) != self.n_cells:
            raise GenevaeError(
                f"{self.path}: obs has {len(obs)} rows but {self.name} has {self.n_cells}; the "
                "file is inconsistent, re-export it."
            )
        return obs

    def read_var_names(self) -> pd.Index:
        """The gene names (``.var`` index) as strings; duplicates raise."""
        var = ad.io.read_elem(self._file["var"])
        names = pd.Index(var.index.astype(str))
        check_unique_names(names, "gene", self.path)
        return names

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``[start, stop)`` as float32 CSR, (stop - start, n_genes)."""
        begin, end = int(self.indptr[start]), int(self.indptr[stop])
        data = np.asarray(self._data[begin:end], dtype=np.float32)
        indices = np.asarray(self._indices[begin:end])
        indptr = self.indptr[start : stop + 1] - begin
        return sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.n_genes))

    def chunks(self, chunk_size: int) -> Iterator[tuple[int, sp.csr_matrix]]:
        """``(start, rows)`` for consecutive chunks of ``chunk_size`` rows, in file order."""
        for start in range(0, self.n_cells, chunk_size):
            yield start, self.rows(start, min(start + chunk_size, self.n_cells))

    def take(self, rows: np.ndarray, chunk_size: int) -> sp.csr_matrix:
        """The sorted file ``rows`` as one CSR matrix, reading only the chunks that hold them."""
        rows = np.asarray(rows, dtype=np.int64)
        parts = []
        position = 0
        while position < len(rows):
            start = int(rows[position])
            end = int(np.searchsorted(rows, min(start + chunk_size, self.n_cells), side="left"))
            stop = int(rows[end - 1]) + 1  # read up to the last row asked for, not a whole chunk
            parts.append(self.rows(start, stop)[rows[position:end] - start])
            position = end
        if not parts:
            return sp.csr_matrix((0, self.n_genes), dtype=np.float32)
        return sp.vstack(parts, format="csr", dtype=np.float32)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BackedCsr:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
