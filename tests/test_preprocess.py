import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from genevae.config import DataConfig
from genevae.data.io import read
from genevae.data.normalisation import DEFAULT_TARGET_SUM
from genevae.data.preprocess import fit_preprocessor, prepare
from genevae.data.preprocessor import Preprocessor
from genevae.data.values import looks_like_counts
from genevae.errors import GenevaeError

PBMC = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbmc68k_reduced_counts.h5ad"
N_CELLS, N_GENES = 40, 12


def make_counts(sparse: bool = False, seed: int = 0) -> ad.AnnData:
    """(40 cells, 12 genes) Poisson counts with a batch and a label column."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.uniform(1, 20, size=N_GENES), size=(N_CELLS, N_GENES)).astype(np.float32)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(np.where(np.arange(N_CELLS) % 2, "b1", "b0")),
            "kind": np.where(np.arange(N_CELLS) % 4 < 2, "T", "B"),
        },
        index=[f"c{i:02d}" for i in range(N_CELLS)],
    )
    var = pd.DataFrame(index=[f"g{j:02d}" for j in range(N_GENES)])
    return ad.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var)


def with_X(adata: ad.AnnData, X) -> ad.AnnData:
    return ad.AnnData(X, obs=adata.obs.copy(), var=adata.var.copy())


def dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


@pytest.fixture
def counts() -> ad.AnnData:
    return make_counts()


def message_of(call, *args, **kwargs) -> str:
    with pytest.raises(GenevaeError) as error:
        call(*args, **kwargs)
    return str(error.value)


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0, 1], [5, 200]], True),
        ([[0, 1.5], [5, 200]], False),
        ([[0, -1], [5, 200]], False),
        ([[0, np.nan], [5, 200]], False),
        ([[0, np.inf], [5, 200]], False),
        ([[0, 0], [0, 0]], True),
    ],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_looks_like_counts(values, expected, sparse):
    X = np.array(values, dtype=np.float32)
    assert looks_like_counts(sp.csr_matrix(X) if sparse else X) is expected


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_name_count_cell_and_gene(counts, sparse, bad):
    X = counts.X.copy()
    X[3, 5] = bad
    X[7, 1] = bad
    adata = with_X(counts, sp.csr_matrix(X) if sparse else X)
    message = message_of(fit_preprocessor, adata, "nb", source="data.h5ad")
    assert "data.h5ad" in message and "found 2 NaN or infinite values" in message
    assert "'c03'" in message and "'g05'" in message


def test_negative_values_with_nb_suggest_gaussian_or_counts_layer(counts):
    X = counts.X.copy()
    X[2, 4] = -1.5
    message = message_of(fit_preprocessor, with_X(counts, X), "nb")
    assert "negative value" in message and "'c02'" in message and "'g04'" in message
    assert "--likelihood gaussian" in message and "--layer counts" in message


def test_non_integer_values_warn_with_nb(counts, caplog):
    X = counts.X.copy()
    X[0, 0] = 2.5
    with caplog.at_level(logging.WARNING, logger="genevae.data.preprocess"):
        fit_preprocessor(with_X(counts, X), "zinb")
    assert "non-integer value" in caplog.text and "'c00'" in caplog.text


def test_non_integer_values_are_an_error_when_strict(counts):
    X = counts.X.copy()
    X[0, 0] = 2.5
    message = message_of(fit_preprocessor, with_X(counts, X), "nb", strict=True)
    assert "non-integer value" in message and "--layer counts" in message


def test_log_normalised_data_are_recognised(counts, caplog):
    X = np.log1p(counts.X / counts.X.sum(axis=1, keepdims=True) * 1e4)
    message = message_of(fit_preprocessor, with_X(counts, X), "nb", strict=True)
    assert "already log-normalised" in message
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        preprocessor = fit_preprocessor(with_X(counts, X), "gaussian")
    assert preprocessor.transform == "none" and "already log-normalised" in caplog.text


def test_cells_without_counts_are_dropped_and_logged(counts, caplog):
    X = counts.X.copy()
    X[[4, 9]] = 0
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        _, prepared = prepare(with_X(counts, X), DataConfig(), "nb")
    assert prepared.n_cells == N_CELLS - 2
    assert "c04" not in prepared.obs_names and "c09" not in prepared.obs_names
    assert "2 cells without counts" in caplog.text


def test_cells_without_counts_are_an_error_when_strict(counts):
    X = counts.X.copy()
    X[4] = 0
    message = message_of(prepare, with_X(counts, X), DataConfig(strict=True), "nb")
    assert "1 cell without counts" in message and "'c04'" in message


def test_all_zero_genes_are_dropped_and_logged(counts, caplog):
    X = counts.X.copy()
    X[:, [2, 3]] = 0
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        preprocessor = fit_preprocessor(with_X(counts, X), "gaussian")
    assert "g02" not in preprocessor.gene_names and preprocessor.n_genes == N_GENES - 2
    assert "dropped 2 genes" in caplog.text


@pytest.mark.parametrize("shape", [(0, N_GENES), (N_CELLS, 0)])
def test_empty_matrix(shape):
    adata = ad.AnnData(np.zeros(shape, dtype=np.float32))
    assert "empty matrix" in message_of(fit_preprocessor, adata, "nb", source="x.h5ad")


def test_no_genes_left_after_filtering(counts):
    message = message_of(fit_preprocessor, with_X(counts, np.zeros_like(counts.X)), "nb")
    assert "every gene is zero" in message


def test_duplicate_gene_names(counts):
    counts.var_names = ["g00", "g01", "g00", *counts.var_names[3:]]
    message = message_of(fit_preprocessor, counts, "nb")
    assert "'g00'" in message and "var_names_make_unique" in message


def test_unknown_likelihood(counts):
    assert "choose one of" in message_of(fit_preprocessor, counts, "poisson")


def test_layer_is_used_when_configured(counts):
    adata = with_X(counts, np.log1p(counts.X))
    adata.layers["counts"] = counts.X
    _, prepared = prepare(adata, DataConfig(layer="counts"), "nb")
    np.testing.assert_array_equal(prepared.x.numpy(), counts.X)
    assert "no layer 'raw'" in message_of(prepare, adata, DataConfig(layer="raw"), "nb")


# --- conditions and labels -----------------------------------------------------------------


def test_missing_condition_column_lists_the_columns(counts):
    message = message_of(fit_preprocessor, counts, "nb", condition_keys=("tissue",))
    assert "'tissue'" in message and "'batch'" in message and "'kind'" in message


def test_condition_with_a_single_category(counts):
    counts.obs["batch"] = "b0"
    message = message_of(fit_preprocessor, counts, "nb", condition_keys=("batch",))
    assert "single category" in message and "'b0'" in message


def test_condition_with_missing_values(counts):
    counts.obs["batch"] = counts.obs["batch"].astype(object)
    counts.obs.iloc[[5, 6, 8], 0] = None
    message = message_of(fit_preprocessor, counts, "nb", condition_keys=("batch",))
    assert "'batch'" in message and "3 rows" in message and "'c05'" in message


def test_conditions_are_encoded_in_category_order(counts):
    counts.obs["donor"] = np.where(np.arange(N_CELLS) < 10, "z", "a")  # not categorical: sorted
    _, prepared = prepare(counts, DataConfig(condition_keys=("batch", "donor")), "nb")
    assert prepared.n_categories == (2, 2)
    assert prepared.conditions.dtype == torch.int64
    np.testing.assert_array_equal(prepared.conditions[:, 0].numpy(), np.arange(N_CELLS) % 2)
    np.testing.assert_array_equal(prepared.conditions[:, 1].numpy(), np.arange(N_CELLS) < 10)


def test_unseen_category_names_column_value_and_known_ones(counts):
    preprocessor = fit_preprocessor(counts, "nb", condition_keys=("batch",))
    obs = counts.obs.copy()
    obs["batch"] = obs["batch"].astype(str)
    obs.iloc[3, 0] = "b7"
    message = message_of(preprocessor.encode_conditions, obs)
    assert "'batch'" in message and "'b7'" in message and "'b0', 'b1'" in message


def test_missing_label_column(counts):
    message = message_of(prepare, counts, DataConfig(label_key="cell_type"), "nb")
    assert "'cell_type'" in message and "'kind'" in message


def test_label_with_one_class(counts):
    counts.obs["kind"] = "T"
    message = message_of(prepare, counts, DataConfig(label_key="kind"), "nb")
    assert "'kind'" in message and "1 class" in message


def test_labels_follow_the_kept_cells(counts):
    X = counts.X.copy()
    X[0] = 0
    _, prepared = prepare(with_X(counts, X), DataConfig(label_key="kind"), "nb")
    np.testing.assert_array_equal(prepared.labels, counts.obs["kind"].to_numpy()[1:])


@pytest.mark.parametrize(
    ("n_cells", "val_fraction", "expected"),
    [
        (3, 0.5, "at least 4 cells"),
        (12, 0.1, "2 in validation and 10 in training"),  # ok: no error
        (10, 0.1, "1 in validation and 9 in training"),
        (10, 0.9, "9 in validation and 1 in training"),
    ],
)
def test_enough_cells_for_the_split(counts, n_cells, val_fraction, expected):
    config = DataConfig(val_fraction=val_fraction)
    adata = counts[:n_cells].copy()
    if n_cells == 12:
        assert prepare(adata, config, "nb")[1].n_cells == 12
        return
    message = message_of(prepare, adata, config, "nb")
    assert f"{n_cells} cells remain" in message and expected in message
    if n_cells >= 4:
        assert "between 0.2 and 0.8" in message


# --- transforms ----------------------------------------------------------------------------


def log1p_standardised(X: np.ndarray) -> np.ndarray:
    """Direct reference: log1p(CP10k), then z-score each gene (ddof 0)."""
    values = np.log1p(X / X.sum(axis=1, keepdims=True) * DEFAULT_TARGET_SUM)
    return (values - values.mean(axis=0)) / values.std(axis=0)


@pytest.mark.parametrize("sparse", [False, True])
def test_gaussian_on_counts_is_log1p_normalised_and_standardised(sparse, caplog):
    adata = make_counts(sparse=sparse)
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        preprocessor, prepared = prepare(adata, DataConfig(), "gaussian")
    assert preprocessor.transform == "log1p" and "log1p" in caplog.text
    X = dense(adata.X).astype(np.float64)
    np.testing.assert_allclose(prepared.x.numpy(), log1p_standardised(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prepared.library.numpy(), X.sum(axis=1))


def test_gaussian_on_continuous_values_is_standardised_only(caplog):
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(N_CELLS, N_GENES)) * np.arange(1, N_GENES + 1) + 3).astype(np.float32)
    adata = with_X(make_counts(), X)
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        preprocessor, prepared = prepare(adata, DataConfig(), "gaussian")
    assert preprocessor.transform == "none" and "standardising each gene only" in caplog.text
    expected = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(prepared.x.numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(prepared.library.numpy(), np.ones(N_CELLS))


def test_constant_gene_is_centred_not_scaled():
    X = np.random.default_rng(2).normal(size=(N_CELLS, N_GENES)).astype(np.float32)
    X[:, 0] = 5.0
    _, prepared = prepare(with_X(make_counts(), X), DataConfig(), "gaussian")
    np.testing.assert_array_equal(prepared.x[:, 0].numpy(), 0.0)


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_count_likelihoods_keep_raw_counts(counts, likelihood):
    preprocessor, prepared = prepare(counts, DataConfig(), likelihood)
    assert preprocessor.transform == "none" and preprocessor.gene_mean is None
    np.testing.assert_array_equal(prepared.x.numpy(), counts.X)
    np.testing.assert_array_equal(prepared.library.numpy(), counts.X.sum(axis=1))


def planted_variable_genes(seed: int = 3) -> tuple[ad.AnnData, list[str]]:
    """200 cells x 30 genes: 25 Poisson genes, 5 switching between mean 1 and 100."""
    rng = np.random.default_rng(seed)
    mean = np.full((200, 30), 20.0)
    planted = [4, 11, 17, 22, 29]
    mean[:, planted] = np.where(rng.random((200, 1)) < 0.5, 1.0, 100.0)
    X = rng.poisson(mean).astype(np.float32)
    adata = ad.AnnData(X, var=pd.DataFrame(index=[f"g{j:02d}" for j in range(30)]))
    adata.obs_names = [f"c{i}" for i in range(200)]
    return adata, [f"g{j:02d}" for j in planted]


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_highly_variable_genes_are_the_planted_ones(likelihood, caplog):
    adata, planted = planted_variable_genes()
    with caplog.at_level(logging.INFO, logger="genevae.data.preprocess"):
        preprocessor, prepared = prepare(adata, DataConfig(n_top_genes=5), likelihood)
    assert list(preprocessor.gene_names) == planted
    assert prepared.n_genes == 5 and "kept the 5 most variable genes" in caplog.text
    if likelihood == "nb":  # library over the modelled genes only
        expected = adata[:, planted].X.sum(axis=1)
        np.testing.assert_array_equal(prepared.library.numpy(), expected)


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_sparse_and_dense_give_the_same_result(likelihood):
    adata, _ = planted_variable_genes()
    sparse = with_X(adata, sp.csr_matrix(adata.X))
    config = DataConfig(n_top_genes=8)
    dense_pre, dense_data = prepare(adata, config, likelihood)
    sparse_pre, sparse_data = prepare(sparse, config, likelihood)
    assert dense_pre.gene_names == sparse_pre.gene_names
    torch.testing.assert_close(dense_data.x, sparse_data.x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dense_data.library, sparse_data.library)


# --- embedding new data --------------------------------------------------------------------


def test_select_genes_reorders_and_reports_missing_genes(counts):
    preprocessor = fit_preprocessor(counts, "nb")
    shuffled = counts[:, ::-1].copy()
    np.testing.assert_array_equal(dense(preprocessor.select_genes(shuffled)), counts.X)
    message = message_of(preprocessor.select_genes, counts[:, 3:].copy())
    assert "3 of the 12 genes" in message and "'g00'" in message


def test_transform_matches_prepare_on_new_data(counts):
    preprocessor, prepared = prepare(counts, DataConfig(), "gaussian")
    x, library = preprocessor.transform_matrix(preprocessor.select_genes(counts))
    np.testing.assert_allclose(x, prepared.x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(library, prepared.library.numpy())


@pytest.mark.parametrize("likelihood", ["gaussian", "nb"])
def test_state_round_trips_through_torch_load_weights_only(tmp_path, counts, likelihood):
    preprocessor = fit_preprocessor(counts, likelihood, condition_keys=("batch",))
    torch.save({"preprocessor": preprocessor.to_state()}, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)["preprocessor"]
    again = Preprocessor.from_state(state)
    for name in (
        "gene_names",
        "likelihood",
        "transform",
        "condition_keys",
        "condition_categories",
        "target_sum",
    ):
        assert getattr(again, name) == getattr(preprocessor, name)
    for name in ("gene_mean", "gene_std"):
        if getattr(preprocessor, name) is None:
            assert getattr(again, name) is None
        else:
            np.testing.assert_array_equal(getattr(again, name), getattr(preprocessor, name))
    np.testing.assert_array_equal(
        again.transform_matrix(counts.X)[0], preprocessor.transform_matrix(counts.X)[0]
    )


def test_state_from_another_version_is_refused(counts):
    state = fit_preprocessor(counts, "nb").to_state()
    state["format"] = "something-else"
    assert "another genevae version" in message_of(Preprocessor.from_state, state)


# --- real data -----------------------------------------------------------------------------


def test_pbmc_prepares_for_nb_with_labels():
    adata = read(PBMC)
    preprocessor, prepared = prepare(
        adata, DataConfig(path=str(PBMC), label_key="bulk_labels"), "nb"
    )
    assert (prepared.n_cells, prepared.n_genes) == (700, 765)
    assert preprocessor.gene_names == tuple(adata.var_names)
    assert len(set(prepared.labels)) == 10
    assert prepared.x.dtype == torch.float32 and prepared.library.dtype == torch.float32
    assert torch.all(prepared.library > 0)
    assert prepared.conditions.shape == (700, 0) and prepared.n_categories == ()
