"""Two-dimensional coordinates of the latent means, for the latent scatter plot.

UMAP (McInnes et al. 2018, umap-learn) when it is installed and works; otherwise the
first two principal components, and the caller is told why, so the figure can say so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.decomposition import PCA

__all__ = ["Embedding2D", "embed_2d", "EMBED_MAX_CELLS"]

#: Cells embedded at most (a seeded subsample beyond): UMAP's cost grows with cells.
EMBED_MAX_CELLS = 5_000  # genevae choice: a readable scatter, about 10 s of UMAP on 2 cores


@dataclass(frozen=True)
class Embedding2D:
    """Coordinates (n, 2) of the cells at ``rows`` of the input, and how they were made."""

    coords: np.ndarray
    rows: np.ndarray
    method: str
    note: str | None = None


def embed_2d(qz_mean: ArrayLike, seed: int = 0, method: str = "umap") -> Embedding2D:
    """UMAP (``method="umap"``) or PCA of the posterior means, (n_cells, n_latent) -> (n, 2).

    Falls back to PCA when umap-learn is missing or fails; ``note`` says why.
    """
    mean = np.asarray(qz_mean, dtype=np.float64)
    rows = np.arange(mean.shape[0])
    if mean.shape[0] > EMBED_MAX_CELLS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, EMBED_MAX_CELLS, replace=False))
    mean = mean[rows]
    note = None
    if method == "umap":
        try:
            import umap

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coords = umap.UMAP(n_neighbors=15, random_state=seed).fit_transform(mean)
            return Embedding2D(np.asarray(coords), rows, "UMAP")
        except Exception as error:  # noqa: BLE001 - any UMAP failure falls back to PCA
            note = f"UMAP failed ({type(error).__name__}: {error}); showing PCA instead"
    n_components = min(2, mean.shape[1], mean.shape[0])
    coords = PCA(n_components=n_components, random_state=seed).fit_transform(mean)
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    return Embedding2D(coords, rows, "PCA", note)
