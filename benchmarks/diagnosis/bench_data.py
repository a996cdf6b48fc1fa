"""The four real datasets of the diagnosis benchmark, prepared once per run.

Every dataset is split, with a fixed seed, into a *pool* handed to the training tool
(which splits off its own validation cells, as users do) and a *test* set that no
training ever sees: the truth (``truth.py``) is measured on the test cells only.

Raw integer counts stay in ``.X`` (float32, dense after subsetting). Labels, where the
dataset has them, feed the linear probe of ``measure.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

__all__ = ["Dataset", "load_dataset", "DATASETS"]

#: ``shared/data`` beside the repository (as the tests find it), whichever folder it is in.
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
#: Fraction of each dataset's cells held out for the truth, never trained on.
TEST_FRACTION = 0.2
SPLIT_SEED = 18  # issue 18
#: Mouse brain: a subsample keeps a 2N-epoch run within its ~60 s (brief of issue 18).
MOUSE_BRAIN_N_CELLS = 2000
#: CITE-seq and geuvadis: the most variable genes kept (by variance of log1p counts),
#: as scvi-tools tutorials keep a few thousand highly variable genes; for geuvadis it
#: also keeps a 2N-epoch run of a big decoder within its ~60 s.
N_VARIABLE_GENES = 2000

#: name -> (file, label column in .obs or None)
DATASETS: dict[str, tuple[str, str | None]] = {
    "pbmc68k": ("pbmc68k_reduced_counts.h5ad", "bulk_labels"),
    "mouse_brain": ("tenx_mouse_brain_10k_subset.h5ad", None),
    "citeseq": ("scvi_pbmc_citeseq_2batch.h5ad", "batch"),
    "geuvadis": ("humanGender_geuvadis.h5ad", "sex"),
}


@dataclass(frozen=True)
class Dataset:
    """Counts split into the training tool's pool and the held-out test cells.

    Attributes
    ----------
    name
        Key of :data:`DATASETS`.
    pool, test
        AnnData with raw counts in ``.X`` (dense float32, cells x genes).
    test_labels
        Integer label codes of the test cells, or ``None`` for unlabelled data.
    """

    name: str
    pool: ad.AnnData
    test: ad.AnnData
    test_labels: np.ndarray | None

    @property
    def n_genes(self) -> int:
        return self.pool.n_vars


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float32)


def load_dataset(name: str) -> Dataset:
    """Read, subset and split one dataset (deterministic: fixed seeds)."""
    file, label_key = DATASETS[name]
    adata = ad.read_h5ad(DATA_DIR / file)
    rng = np.random.default_rng(SPLIT_SEED)
    if name == "mouse_brain":
        keep = np.sort(rng.choice(adata.n_obs, MOUSE_BRAIN_N_CELLS, replace=False))
        adata = adata[keep]
    x = _dense(adata.X)
    genes = np.flatnonzero(x.sum(0) > 0)  # a gene never seen has no likelihood to learn
    if name in ("citeseq", "geuvadis"):
        variance = np.log1p(x[:, genes]).var(0)
        genes = np.sort(genes[np.argsort(variance)[::-1][:N_VARIABLE_GENES]])
    adata = ad.AnnData(X=x[:, genes], obs=adata.obs.copy(), var=adata.var.iloc[genes].copy())
    adata.obs_names_make_unique()
    order = rng.permutation(adata.n_obs)
    n_test = int(round(TEST_FRACTION * adata.n_obs))
    test = adata[np.sort(order[:n_test])].copy()
    pool = adata[np.sort(order[n_test:])].copy()
    labels = None
    if label_key is not None:
        labels = test.obs[label_key].astype("category").cat.codes.to_numpy()
    return Dataset(name, pool, test, labels)
