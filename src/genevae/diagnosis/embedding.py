"""Two-dimensional coordinates of the latent means, for the latent scatter plot.

UMAP (McInnes et al. 2018, umap-learn) when it is installed and works; otherwise the
first two principal components, and the caller is told why, so the figure can say so.

UMAP gets exact neighbours from scikit-learn: its own search (NN-descent, used above
4,096 cells) compiles with numba on every run, 34 of the 48 s a 5,000-cell picture took
on 2 cores; and its layout runs :data:`UMAP_EPOCHS` passes, its default above 10,000
cells, where below it takes 500 (8.5 against 3.4 s). 5,000 cells now take about 14 s,
most of it numba compiling the fuzzy graph (issue 19's "time it as a user does": this
was most of a default ``genevae train``).

umap-learn compiles its numba functions in every process: they are not declared
cacheable. :func:`embed_2d` turns numba's own on-disk cache on for them
(:func:`_cache_umap_compilation`), so only the first embedding after umap-learn is
installed compiles: 5,000 cells then take 2.7-3.4 s instead of 7.4-9.6 s, with
identical coordinates. The cache lives where numba keeps it for cacheable functions
(``__pycache__`` beside umap-learn's sources, else numba's user cache directory, or
``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.decomposition import PCA

__all__ = ["Embedding2D", "embed_2d", "EMBED_MAX_CELLS", "UMAP_EPOCHS", "UMAP_NEIGHBOURS"]

#: Cells embedded at most (a seeded subsample beyond): UMAP's cost grows with cells.
EMBED_MAX_CELLS = 5_000  # genevae choice: a readable scatter
#: UMAP's neighbours (umap-learn's default) and its layout's passes over the graph.
UMAP_NEIGHBOURS = 15
UMAP_EPOCHS = 200  # umap-learn's default for more than 10,000 cells


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
            from sklearn.neighbors import NearestNeighbors

            _cache_umap_compilation()

            k = min(UMAP_NEIGHBOURS, mean.shape[0] - 1)  # umap-learn's own limit
            # each cell is its own first neighbour, as in umap-learn's search
            distances, indices = NearestNeighbors(n_neighbors=k).fit(mean).kneighbors(mean)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coords = umap.UMAP(n_neighbors=k, n_epochs=UMAP_EPOCHS, random_state=seed,
                                   precomputed_knn=(indices, distances, None)).fit_transform(mean)
            return Embedding2D(np.asarray(coords), rows, "UMAP")
        except Exception as error:  # noqa: BLE001 - any UMAP failure falls back to PCA
            note = f"UMAP failed ({type(error).__name__}: {error}); showing PCA instead"
    n_components = min(2, mean.shape[1], mean.shape[0])
    coords = PCA(n_components=n_components, random_state=seed).fit_transform(mean)
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    return Embedding2D(coords, rows, "PCA", note)


@functools.cache
def _cache_umap_compilation() -> None:
    """Turn on numba's on-disk cache for every compiled function of umap-learn's modules
    (once per process; a function numba cannot cache keeps compiling as before)."""
    import sys

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not (name == "umap" or name.startswith("umap.")):
            continue
        for function in vars(module).values():
            if isinstance(function, Dispatcher) and isinstance(function._cache, NullCache):
                try:
                    function.enable_caching()
                except RuntimeError:  # no writable cache location: compile in memory
                    pass
