"""Backed streaming (issue 6): --backed trains from the .h5ad on disk, chunk by chunk.

Tolerances: a chunk that holds the whole file must give the in-memory history
exactly (same statistics, same batches, same random draws). With several chunks
the batches are different draws of the same data (cells shuffled within loads of
eight random blocks instead of over the whole file), so the history is another
sample of SGD; it must stay within STREAMED_RELATIVE_TOLERANCE of the in-memory
losses at every epoch (the runs here differ by about 0.2%).
"""

import os
import signal
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import LOSS_COLUMNS, tiny_config

from genevae.cli import main
from genevae.commands.embed import embed_file
from genevae.commands.evaluate import evaluate_run
from genevae.commands.train import train_run
from genevae.data.backed import BackedCsr
from genevae.data.chunked import BLOCKS_PER_CHUNK, ChunkedBatches
from genevae.errors import GenevaeError
from genevae.services.fitting import fit_prepared
from genevae.services.inputs import read_and_prepare

TIMING_COLUMNS = ["seconds", "cells_per_second"]
#: Relative difference allowed between streamed (several chunks) and in-memory losses.
STREAMED_RELATIVE_TOLERANCE = 0.02


def _history(path, backed, chunk_size=10_000, **sections):
    data = {"path": str(path), "backed": backed, "chunk_size": chunk_size,
            "condition_keys": ("batch",), **sections.pop("data", {})}
    inputs = read_and_prepare(tiny_config(data=data, **sections))
    config, preprocessor, prepared = inputs.config, inputs.preprocessor, inputs.prepared
    _, result = fit_prepared(preprocessor, prepared, config, echo=lambda line: None)
    return preprocessor, result.history.frame.drop(columns=TIMING_COLUMNS)


@pytest.mark.parametrize("settings", [
    {},
    {"model": {"likelihood": "gaussian"}, "data": {"n_top_genes": 30}},  # second pass
    {"data": {"n_top_genes": 30}},
])
def test_one_chunk_holding_the_file_gives_the_in_memory_history_exactly(sc_h5ad, settings):
    memory_pre, memory = _history(sc_h5ad, False, **settings)
    streamed_pre, streamed = _history(sc_h5ad, True, 10_000, **settings)
    assert streamed_pre.gene_names == memory_pre.gene_names
    pd.testing.assert_frame_equal(streamed, memory, check_exact=True)


def test_several_chunks_stay_within_the_stated_tolerance(sc_h5ad):
    memory_pre, memory = _history(sc_h5ad, False, model={"likelihood": "gaussian"},
                                  data={"n_top_genes": 30})
    streamed_pre, streamed = _history(sc_h5ad, True, 96, model={"likelihood": "gaussian"},
                                      data={"n_top_genes": 30})
    assert streamed_pre.gene_names == memory_pre.gene_names
    np.testing.assert_allclose(streamed_pre.gene_mean, memory_pre.gene_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(streamed_pre.gene_std, memory_pre.gene_std, rtol=1e-5)
    for column in LOSS_COLUMNS:
        np.testing.assert_allclose(streamed[column], memory[column],
                                   rtol=STREAMED_RELATIVE_TOLERANCE, err_msg=column)
    assert streamed["val_loss"].iloc[-1] < streamed["val_loss"].iloc[0]


def _source(n_cells, batch_size, chunk_size, shuffle=True, seed=0):
    def read(positions):
        values = torch.as_tensor(positions, dtype=torch.float32)
        reads.append(len(positions))
        return lambda rows: (values[rows, None], values[rows])

    reads: list[int] = []
    codes = torch.arange(n_cells)[:, None]
    return ChunkedBatches(read, codes, batch_size, shuffle, seed, chunk_size), reads


@pytest.mark.parametrize(("n_cells", "batch_size", "chunk_size"),
                         [(1000, 32, 100), (1000, 64, 1000), (999, 50, 77), (10, 4, 3)])
def test_every_cell_once_per_epoch_in_full_batches_and_bounded_loads(n_cells, batch_size,
                                                                      chunk_size):
    source, reads = _source(n_cells, batch_size, chunk_size)
    batches = list(source.epoch(3))
    seen = torch.cat([b.library for b in batches]).long()
    assert sorted(seen.tolist()) == list(range(n_cells))
    assert all(torch.equal(b.conditions[:, 0], b.library.long()) for b in batches)
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert len(batches) == len(source)
    assert max(reads) <= -(-chunk_size // BLOCKS_PER_CHUNK) * BLOCKS_PER_CHUNK


def test_the_order_depends_only_on_seed_and_epoch():
    def order(seed, epoch):
        source, _ = _source(500, 16, 64, seed=seed)
        return torch.cat([b.library for b in source.epoch(epoch)]).tolist()

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)
    assert order(0, 1) != sorted(order(0, 1))  # shuffled across chunks
    unshuffled, _ = _source(500, 16, 64, shuffle=False)
    assert torch.cat([b.library for b in unshuffled.epoch(0)]).tolist() == list(range(500))


def test_backed_reads_the_same_rows_as_anndata(sc_h5ad):
    adata = ad.read_h5ad(sc_h5ad)
    with BackedCsr(sc_h5ad) as matrix:
        assert (matrix.n_cells, matrix.n_genes) == adata.shape
        np.testing.assert_array_equal(matrix.rows(100, 250).toarray(), adata.X[100:250].toarray())
        rows = np.array([0, 5, 6, 300, 599])
        np.testing.assert_array_equal(matrix.take(rows, 64).toarray(), adata.X[rows].toarray())
        assert list(matrix.read_obs().index) == list(adata.obs_names)


@pytest.mark.parametrize(("layout", "message"), [("dense", "dense matrix"), ("csc", "CSC")])
def test_dense_or_csc_matrices_are_refused_with_the_fix(tmp_path, sc_h5ad, layout, message, capsys):
    adata = ad.read_h5ad(sc_h5ad)
    adata.X = adata.X.toarray() if layout == "dense" else sp.csc_matrix(adata.X)
    path = tmp_path / f"{layout}.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(GenevaeError, match=message):
        BackedCsr(path)
    status = main(["train", "--data", str(path), "--backed", "--out", str(tmp_path / "run")])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_backed_needs_an_h5ad(tmp_path, capsys):
    table = tmp_path / "matrix.csv"
    table.write_text("cell,gene_0001,gene_0002\nc1,1,2\nc2,3,4\n")
    assert main(["train", "--data", str(table), "--backed", "--out", str(tmp_path / "r")]) == 2
    assert "--backed streams .h5ad files only" in capsys.readouterr().err


def test_embed_and_evaluate_stream_with_the_in_memory_results(sc_h5ad, tmp_path):
    config = tiny_config(data={"path": str(sc_h5ad), "backed": True, "chunk_size": 100,
                               "condition_keys": ("batch",), "label_key": "cell_type"})
    train_run(config, tmp_path / "run", echo=lambda line: None, report=False)
    streamed = embed_file(tmp_path / "run", sc_h5ad, tmp_path / "streamed.h5ad", backed=True)
    loaded = embed_file(tmp_path / "run", sc_h5ad, tmp_path / "loaded.h5ad", backed=False)
    np.testing.assert_array_equal(ad.read_h5ad(streamed).obsm["X_genevae"],
                                  ad.read_h5ad(loaded).obsm["X_genevae"])
    metrics = {}
    for backed in (True, False):
        torch.manual_seed(0)
        metrics[backed] = evaluate_run(tmp_path / "run", embedding="pca", echo=lambda line: None,
                                       backed=backed, n_importance=10)
    assert metrics[True]["data"]["backed"] and not metrics[False]["data"]["backed"]
    assert metrics[True]["iwae"] == metrics[False]["iwae"]
    assert metrics[True]["latent"]["n_active"] == metrics[False]["latent"]["n_active"]
    assert metrics[True]["heldout"]["model_recon"] == pytest.approx(
        metrics[False]["heldout"]["model_recon"], rel=1e-9)


def _genevae(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "genevae", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_streamed_run_resumes_bit_exactly_after_sigkill(sc_h5ad, tmp_path):
    options = ["--data", sc_h5ad, "--backed", "--chunk-size", "96", "--likelihood", "nb",
               "--condition", "batch", "--n-latent", "4", "--n-hidden", "32", "--batch-size", "16",
               "--epochs", "5", "--seed", "2", "--no-report"]
    whole = _genevae("train", *options, "--out", tmp_path / "whole")
    out, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out
    killed = _genevae("train", *options, "--out", tmp_path / "run")
    for line in killed.stdout:
        if line.startswith("epoch 002 |"):
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    resumed = _genevae("train", "--resume", tmp_path / "run", "--no-report")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out

    def history(run):
        return pd.read_csv(run / "history.csv").drop(columns=TIMING_COLUMNS)

    pd.testing.assert_frame_equal(history(tmp_path / "run"), history(tmp_path / "whole"))
