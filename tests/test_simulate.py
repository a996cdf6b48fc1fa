import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from genevae.data.simulate import BULK_VARIANCE_SHARES, simulate_bulk, simulate_sc
from genevae.errors import GenevaeError


@pytest.fixture(scope="module")
def bulk():
    """1,500 samples x 300 genes, 6 factors: enough samples for stable R² estimates."""
    return simulate_bulk(n_samples=1500, n_genes=300, n_factors=6, seed=3)


@pytest.fixture(scope="module")
def single_cell():
    return simulate_sc(n_cells=1500, n_genes=400, n_cell_types=5, n_batches=3, seed=4)


def r_squared_per_gene(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n_genes,) R² of an OLS fit (with intercept) of each column of ``values`` on ``design``."""
    design = np.column_stack([np.ones(len(design)), design])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return 1 - (values - design @ coefficients).var(axis=0) / values.var(axis=0)


def mean_r_squared(design: np.ndarray, values: np.ndarray) -> float:
    return float(np.mean(r_squared_per_gene(design, values)))


def condition_dummies(adata) -> np.ndarray:
    return pd.get_dummies(adata.obs[["tissue", "disease", "batch"]], drop_first=True).to_numpy(
        float
    )


# --- bulk ----------------------------------------------------------------------------------


def test_bulk_shapes_names_and_annotations(bulk):
    continuous, counts = bulk
    for adata in (continuous, counts):
        assert adata.shape == (1500, 300)
        assert adata.X.dtype == np.float32 and isinstance(adata.X, np.ndarray)
        assert adata.obs_names[0] == "sample_0000" and adata.var_names[-1] == "gene_0299"
        assert adata.obsm["true_latent"].shape == (1500, 6)
        assert list(adata.obs["tissue"].cat.categories) == [f"tissue_{i}" for i in range(6)]
        assert adata.obs["disease"].nunique() == 3 and adata.obs["batch"].nunique() == 10
        assert adata.uns["simulation"]["n_factors"] == 6
    np.testing.assert_array_equal(continuous.obsm["true_latent"], counts.obsm["true_latent"])
    pd.testing.assert_frame_equal(continuous.obs, counts.obs)


def test_bulk_continuous_genes_are_z_scored(bulk):
    X = bulk[0].X
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)


def test_bulk_variance_shares_match_the_design(bulk):
    continuous, _ = bulk
    X = continuous.X.astype(np.float64)
    latent = continuous.obsm["true_latent"]
    conditions = condition_dummies(continuous)
    # OLS R² on 1,500 samples overestimates by about p / n (≤ 0.01 here)
    assert mean_r_squared(latent, X) == pytest.approx(BULK_VARIANCE_SHARES["latent"], abs=0.03)
    assert mean_r_squared(conditions, X) == pytest.approx(0.25, abs=0.03)
    explained = mean_r_squared(np.column_stack([latent, conditions]), X)
    assert 1 - explained == pytest.approx(BULK_VARIANCE_SHARES["noise"], abs=0.02)


def test_bulk_counts_share_the_design(bulk):
    _, counts = bulk
    X = counts.X
    assert X.min() >= 0 and np.array_equal(X, np.round(X))
    median_gene_mean = np.median(X.mean(axis=0))
    assert 50 < median_gene_mean < 1000  # typical bulk counts: tens to thousands
    # the latent and conditions drive log counts: most of the normalised log-expression
    log_expression = np.log1p(X / X.sum(axis=1, keepdims=True) * 1e6)
    design = np.column_stack([counts.obsm["true_latent"], condition_dummies(counts)])
    assert mean_r_squared(design, log_expression) > 0.5


def test_bulk_is_seeded():
    first = simulate_bulk(n_samples=50, n_genes=20, n_factors=3, seed=7)
    again = simulate_bulk(n_samples=50, n_genes=20, n_factors=3, seed=7)
    other = simulate_bulk(n_samples=50, n_genes=20, n_factors=3, seed=8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.obsm["true_latent"], b.obsm["true_latent"])
    assert not np.array_equal(first[1].X, other[1].X)


def test_bulk_default_shapes():
    continuous, counts = simulate_bulk()
    assert continuous.shape == counts.shape == (5000, 2000)
    assert continuous.obsm["true_latent"].shape == (5000, 20)
    strengths = continuous.uns["simulation"]["factor_strengths"]
    assert min(strengths) == pytest.approx(0.6) and max(strengths) == pytest.approx(1.4)


# --- single cell ---------------------------------------------------------------------------


def test_sc_shapes_and_annotations(single_cell):
    adata = single_cell
    assert adata.shape == (1500, 400)
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert (adata.layers["counts"] != adata.X).nnz == 0
    assert adata.obs["cell_type"].nunique() == 5 and adata.obs["batch"].nunique() == 3
    assert adata.obs["program"].dtype == np.float32
    assert adata.obsm["true_latent"].shape == (1500, 2)
    np.testing.assert_array_equal(adata.obsm["true_latent"][:, 0], adata.obs["program"])
    assert adata.uns["simulation"]["true_latent_columns"] == ["program", "log_library"]


def test_sc_counts_are_non_negative_integers(single_cell):
    data = single_cell.X.data
    assert data.min() >= 0 and np.array_equal(data, np.round(data))


@pytest.mark.parametrize("n_genes", [60, 400])
def test_sc_zero_fraction_is_realistic(n_genes):
    adata = simulate_sc(n_cells=800, n_genes=n_genes, seed=5)
    zero_fraction = 1 - adata.X.nnz / np.prod(adata.shape)
    assert 0.70 <= zero_fraction <= 0.95


def test_sc_library_sizes_follow_the_latent(single_cell):
    library = np.asarray(single_cell.X.sum(axis=1)).ravel()
    assert 0.5 * 1.5 * 400 < np.median(library) < 2 * 1.5 * 400  # ≈ 1.5 UMIs per gene
    log_library = single_cell.obsm["true_latent"][:, 1]
    assert np.corrcoef(np.log(library), log_library)[0, 1] > 0.8


def test_sc_cell_types_and_program_drive_gene_modules(single_cell):
    counts = single_cell.X.toarray()
    log_expression = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    log_expression = log_expression[:, log_expression.var(axis=0) > 0]
    obs = single_cell.obs

    def top_r_squared(design: np.ndarray) -> float:
        """R² of the 95th-percentile gene: planted modules are 5% of genes per factor."""
        return float(np.quantile(r_squared_per_gene(design, log_expression), 0.95))

    cell_type = top_r_squared(pd.get_dummies(obs["cell_type"], drop_first=True).to_numpy(float))
    batch = top_r_squared(pd.get_dummies(obs["batch"], drop_first=True).to_numpy(float))
    program = r_squared_per_gene(obs[["program"]].to_numpy(float), log_expression)
    assert cell_type > 0.1
    assert batch < cell_type / 3  # batch shifts (sd 0.2) are small next to markers (|LFC| ≈ 2)
    assert np.sort(program)[-5:].min() > 0.1  # the module's strongest genes follow the program


def test_sc_is_seeded():
    first = simulate_sc(n_cells=100, n_genes=30, seed=2)
    again = simulate_sc(n_cells=100, n_genes=30, seed=2)
    assert (first.X != again.X).nnz == 0
    pd.testing.assert_frame_equal(first.obs, again.obs)


def test_sc_default_shape():
    adata = simulate_sc()
    assert adata.shape == (10000, 2000)
    assert 1000 < np.median(np.asarray(adata.X.sum(axis=1))) < 10000


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        (simulate_bulk, {"n_samples": 1}),
        (simulate_bulk, {"n_samples": 0}),
        (simulate_bulk, {"n_factors": 0}),
        (simulate_sc, {"n_genes": 0}),
        (simulate_sc, {"n_cell_types": 0}),
    ],
)
def test_sizes_must_be_positive(function, kwargs):
    with pytest.raises(GenevaeError, match="at least"):
        function(**kwargs)
