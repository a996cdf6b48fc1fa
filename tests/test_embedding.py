"""The 2-D picture of the latent means: UMAP on exact neighbours, PCA when UMAP cannot."""

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from genevae.diagnosis.embedding import EMBED_MAX_CELLS, embed_2d


def test_umap_keeps_separated_groups_apart():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(4, 10))
    labels = np.repeat(np.arange(4), 150)
    means = centres[labels] + rng.normal(size=(len(labels), 10))
    embedded = embed_2d(means, seed=0)
    assert embedded.method == "UMAP" and embedded.note is None
    assert embedded.coords.shape == (600, 2) and np.isfinite(embedded.coords).all()
    # each cell's 5 nearest cells in the picture are of its own group
    probe = KNeighborsClassifier(n_neighbors=5).fit(embedded.coords, labels)
    assert probe.score(embedded.coords, labels) > 0.98


def test_large_inputs_are_subsampled_and_tiny_ones_fall_back_to_pca():
    means = np.random.default_rng(1).normal(size=(EMBED_MAX_CELLS + 7, 3))
    embedded = embed_2d(means, seed=0, method="pca")
    assert len(embedded.rows) == EMBED_MAX_CELLS and embedded.method == "PCA"
    tiny = embed_2d(means[:2], seed=0)
    assert tiny.method == "PCA" and "UMAP failed" in tiny.note


def test_umaps_compiled_functions_are_cached_on_disk_and_give_the_same_picture():
    """umap-learn's numba functions compile once per installation, not once per process."""
    import umap.umap_
    from numba.core.caching import NullCache

    means = np.random.default_rng(2).normal(size=(300, 5))
    first = embed_2d(means, seed=0)
    assert not isinstance(umap.umap_.smooth_knn_dist._cache, NullCache)
    again = embed_2d(means, seed=0)
    assert first.method == again.method == "UMAP"
    np.testing.assert_array_equal(first.coords, again.coords)
