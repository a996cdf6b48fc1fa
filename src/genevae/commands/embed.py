"""``genevae embed RUN --data FILE --out OUT``: the latent means of new cells, in
``obsm["X_genevae"]`` of a new ``.h5ad``."""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np

from genevae.data.io import read, write_h5ad
from genevae.data.streaming import backed_cells
from genevae.errors import GenevaeError
from genevae.files import atomic_write
from genevae.services.fitted import EVAL_BATCH_SIZE, encode, encode_batches, load_fitted

__all__ = ["embed_file"]


def embed_file(
    run_dir: str | Path, data: str | Path, out: str | Path, layer: str | None = None,
    overwrite: bool = False, backed: bool | None = None, chunk_size: int | None = None,
) -> Path:
    """Encode the cells of ``data`` with the run's model; write ``obsm["X_genevae"]`` to ``out``.

    With ``backed`` the matrix (``X`` or ``layer``, CSR) is encoded ``chunk_size`` cells at
    a time (default: the run's chunk size) and ``out`` is a copy of the file with
    ``obsm["X_genevae"]`` added, so neither step loads the matrix.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise GenevaeError(f"--out {out} exists; choose another file or pass --overwrite.")
    fitted = load_fitted(run_dir)
    if backed:
        chunk_size = chunk_size or fitted.config.data.chunk_size
        _, cells = backed_cells(str(data), layer, fitted.preprocessor, chunk_size)
        with cells.matrix:
            all_cells = np.arange(cells.n_cells)
            qz_mean, _, _ = encode_batches(fitted.model, cells.batches(all_cells, EVAL_BATCH_SIZE,
                                                                       False))
        with atomic_write(out) as tmp:
            shutil.copyfile(data, tmp)
            with h5py.File(tmp, "r+") as handle:
                obsm = handle.require_group("obsm")
                if "X_genevae" in obsm:
                    del obsm["X_genevae"]
                ad.io.write_elem(obsm, "X_genevae", qz_mean)
        return out
    adata = read(data, layer=layer)
    qz_mean, _ = encode(fitted, adata)
    adata.obsm["X_genevae"] = qz_mean
    write_h5ad(adata, out)
    return out
