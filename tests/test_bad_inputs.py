"""Every user mistake: one clear message, exit 2, no traceback, nothing half-written (issue 7).

Each case runs the real CLI in a subprocess.
"""

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from genevae.data.io import write_h5ad
from genevae.data.simulate import simulate_sc

FAST = ["--n-latent", "2", "--n-hidden", "8", "--epochs", "1", "--batch-size", "16", "--no-report"]


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "genevae", *map(str, args)], capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def _assert_refused(args, *expected, out=None):
    status, text = _cli(*args)
    assert status == 2, text
    assert "Traceback" not in text, text
    for fragment in expected:
        assert fragment in text, (fragment, text)
    if out is not None:
        assert not out.exists(), f"{out} was left behind"
    return text


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    adata = simulate_sc(n_cells=200, n_genes=40, n_cell_types=3, n_batches=2, seed=1)
    path = root / "cells.h5ad"
    write_h5ad(adata, path)
    return root, adata, path


def _h5ad(root, name, X, obs=None):
    adata = ad.AnnData(X, obs=obs)
    adata.var_names = [f"g{i}" for i in range(adata.n_vars)]
    path = root / name
    write_h5ad(adata, path)
    return path


def _train(path, out, *extra):
    return ["train", "--data", path, *FAST, "--out", out, *extra]


# -- files -----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    _assert_refused(_train(tmp_path / "nope.h5ad", tmp_path / "run"), "nope.h5ad",
                    out=tmp_path / "run")


def test_path_is_a_directory_without_a_matrix(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    _assert_refused(_train(folder, tmp_path / "run"), "folder", out=tmp_path / "run")


def test_unknown_extension(tmp_path):
    path = tmp_path / "cells.xlsx"
    path.write_text("x")
    _assert_refused(_train(path, tmp_path / "run"), "cells.xlsx", ".h5ad", out=tmp_path / "run")


def test_truncated_h5ad(cells, tmp_path):
    _, _, good = cells
    path = tmp_path / "cut.h5ad"
    path.write_bytes(good.read_bytes()[:2000])
    _assert_refused(_train(path, tmp_path / "run"), "cut.h5ad", out=tmp_path / "run")


def test_corrupt_mtx(tmp_path):
    folder = tmp_path / "tenx"
    folder.mkdir()
    (folder / "matrix.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n3 3 2\n1 1\n")
    _assert_refused(_train(folder, tmp_path / "run"), "matrix.mtx", out=tmp_path / "run")


def test_empty_matrix(tmp_path):
    path = _h5ad(tmp_path, "empty.h5ad", np.zeros((0, 5), dtype=np.float32))
    _assert_refused(_train(path, tmp_path / "run"), "empty.h5ad", out=tmp_path / "run")


def test_zero_genes_after_filtering(tmp_path):
    path = _h5ad(tmp_path, "zeros.h5ad", np.zeros((50, 5), dtype=np.float32))
    _assert_refused(_train(path, tmp_path / "run", "--likelihood", "nb"), "zeros.h5ad",
                    out=tmp_path / "run")


def test_csv_non_numeric_cell_names_row_and_column(tmp_path):
    table = pd.DataFrame(np.ones((30, 4), dtype=int), index=[f"c{i}" for i in range(30)],
                         columns=["A", "B", "C", "D"]).astype(object)
    table.loc["c7", "C"] = "n/a?"
    path = tmp_path / "table.csv"
    table.to_csv(path)
    _assert_refused(_train(path, tmp_path / "run"), "c7", "'C'", out=tmp_path / "run")


def test_csv_duplicate_gene_names(tmp_path):
    table = pd.DataFrame(np.ones((30, 3), dtype=int), index=[f"c{i}" for i in range(30)],
                         columns=["A", "B", "A"])
    path = tmp_path / "dup.csv"
    table.to_csv(path)
    _assert_refused(_train(path, tmp_path / "run"), "'A'", out=tmp_path / "run")


# -- values ------------------------------------------------------------------------------

def test_nan_values_are_counted_and_located(tmp_path):
    X = np.ones((40, 6), dtype=np.float32)
    X[3, 2] = np.nan
    X[9, 4] = np.inf
    path = _h5ad(tmp_path, "nan.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run"), "2 ", "first", out=tmp_path / "run")


def test_negative_values_with_nb_suggest_gaussian(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    path = _h5ad(tmp_path, "neg.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run", "--likelihood", "nb"), "--likelihood gaussian",
                    out=tmp_path / "run")


def test_non_integer_values_with_nb_and_strict(tmp_path):
    X = np.random.default_rng(0).poisson(20, size=(60, 6)).astype(np.float32) + 0.5
    path = _h5ad(tmp_path, "frac.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run", "--likelihood", "nb", "--strict"),
                    "non-integer", out=tmp_path / "run")


def test_log_normalised_data_is_recognised(tmp_path):
    counts = np.random.default_rng(0).poisson(3, size=(60, 30))
    X = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    path = _h5ad(tmp_path, "lognorm.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run", "--likelihood", "nb", "--strict"),
                    "log-normalised", out=tmp_path / "run")


def test_empty_cells_with_strict(tmp_path):
    X = np.random.default_rng(0).poisson(5, size=(60, 6)).astype(np.float32)
    X[[4, 8]] = 0
    path = _h5ad(tmp_path, "emptycells.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run", "--likelihood", "nb", "--strict"), "2 cells",
                    out=tmp_path / "run")


# -- columns -------------------------------------------------------------------------------

def test_missing_condition_column_lists_the_columns(cells, tmp_path):
    _, _, path = cells
    _assert_refused(_train(path, tmp_path / "run", "--condition", "donor"), "'donor'", "batch",
                    "cell_type", out=tmp_path / "run")


def test_condition_with_a_single_category(tmp_path):
    obs = pd.DataFrame({"batch": ["b1"] * 60}, index=[f"c{i}" for i in range(60)])
    X = np.random.default_rng(0).poisson(5, size=(60, 6)).astype(np.float32)
    path = _h5ad(tmp_path, "single.h5ad", X, obs)
    _assert_refused(_train(path, tmp_path / "run", "--condition", "batch"), "'batch'",
                    out=tmp_path / "run")


def test_condition_with_missing_values(tmp_path):
    values = ["b1", "b2"] * 30
    values[5] = None
    obs = pd.DataFrame({"batch": pd.Categorical(values)}, index=[f"c{i}" for i in range(60)])
    X = np.random.default_rng(0).poisson(5, size=(60, 6)).astype(np.float32)
    path = _h5ad(tmp_path, "missing.h5ad", X, obs)
    _assert_refused(_train(path, tmp_path / "run", "--condition", "batch"), "'batch'", "missing",
                    out=tmp_path / "run")


def test_too_few_cells_for_the_validation_split(tmp_path):
    X = np.random.default_rng(0).poisson(5, size=(3, 6)).astype(np.float32)
    path = _h5ad(tmp_path, "three.h5ad", X)
    _assert_refused(_train(path, tmp_path / "run"), "three.h5ad", out=tmp_path / "run")


# -- hyperparameters and config ------------------------------------------------------------

@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--beta", "-1"], "beta"), (["--n-latent", "0"], "latent"),
     (["--batch-size", "100000"], "--batch-size")],
)
def test_invalid_hyperparameters(cells, tmp_path, option, expected):
    _, _, path = cells
    args = _train(path, tmp_path / "run")
    _assert_refused([*args, *option], expected, out=tmp_path / "run")


def test_config_unknown_key_names_the_nearest(cells, tmp_path):
    _, _, path = cells
    config = tmp_path / "run.toml"
    config.write_text("[model]\nn_latnet = 4\n")
    _assert_refused(["train", "--data", path, "--config", config, "--out", tmp_path / "run"],
                    "n_latnet", "n_latent", out=tmp_path / "run")


# -- after training: embed, evaluate, diagnose -----------------------------------------------

@pytest.fixture(scope="module")
def trained(cells):
    root, _, path = cells
    run = root / "run"
    status, text = _cli(*_train(path, run, "--condition", "batch"))
    assert status == 0, text
    return run


def test_embed_gene_mismatch_names_missing_genes(trained, cells, tmp_path):
    _, adata, _ = cells
    other = adata[:, 5:].copy()
    path = tmp_path / "fewer.h5ad"
    write_h5ad(other, path)
    out = tmp_path / "embedded.h5ad"
    _assert_refused(["embed", trained, "--data", path, "--out", out], "5 of the 40 genes",
                    adata.var_names[0], out=out)


def test_embed_unseen_condition_category(trained, cells, tmp_path):
    _, adata, _ = cells
    other = adata.copy()
    other.obs["batch"] = pd.Categorical(["batch_9"] * other.n_obs)
    path = tmp_path / "newbatch.h5ad"
    write_h5ad(other, path)
    out = tmp_path / "embedded.h5ad"
    _assert_refused(["embed", trained, "--data", path, "--out", out], "'batch_9'", out=out)


def test_probe_label_with_one_class(trained, cells, tmp_path):
    _, adata, _ = cells
    other = adata.copy()
    other.obs["const"] = "x"
    path = tmp_path / "const.h5ad"
    write_h5ad(other, path)
    before = sorted(p.name for p in trained.iterdir())
    _assert_refused(["evaluate", trained, "--data", path, "--label", "const", "--embedding", "pca"],
                    "'const'", "1 class")
    assert sorted(p.name for p in trained.iterdir()) == before


def test_diagnose_log_without_epochs(tmp_path):
    log = tmp_path / "empty.log"
    log.write_text("starting\nloading data\n")
    _assert_refused(["diagnose", log], "empty.log", "no training history found")


def test_reusing_a_run_folder_needs_overwrite(trained, cells):
    _, _, path = cells
    before = sorted(p.name for p in trained.iterdir())
    _assert_refused(_train(path, trained), "--overwrite")
    assert sorted(p.name for p in trained.iterdir()) == before


def test_debug_shows_the_traceback(tmp_path):
    status, text = _cli("--debug", *_train(tmp_path / "nope.h5ad", tmp_path / "run"))
    assert status == 2
    assert "Traceback" in text and "nope.h5ad" in text


def test_warmup_longer_than_the_run_is_a_warning(cells, tmp_path):
    _, _, path = cells
    status, text = _cli(*_train(path, tmp_path / "run", "--kl-schedule", "linear",
                                "--warmup-epochs", "50"))
    assert status == 0, text
    assert "--warmup-epochs 50 is longer than the run" in text


def test_all_zero_genes_are_dropped_with_a_count(tmp_path):
    X = np.random.default_rng(0).poisson(5, size=(60, 6)).astype(np.float32)
    X[:, [1, 4]] = 0
    path = _h5ad(tmp_path, "zerogenes.h5ad", X)
    status, text = _cli(*_train(path, tmp_path / "run", "--likelihood", "nb"))
    assert status == 0, text
    assert "2 genes" in text


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    _assert_refused(["report", tmp_path], "no history.csv")


def test_sweep_with_a_bad_beta_grid(cells, tmp_path):
    _, _, path = cells
    _assert_refused(["sweep", "--data", path, "--beta", "0.5,x", "--out", tmp_path / "sweep"],
                    "--beta 0.5,x", out=tmp_path / "sweep")


def test_auto_fix_with_no_attempts(cells, tmp_path):
    _, _, path = cells
    _assert_refused([*_train(path, tmp_path / "run"), "--auto-fix", "--max-attempts", "0"],
                    "--max-attempts 0", out=tmp_path / "run")
