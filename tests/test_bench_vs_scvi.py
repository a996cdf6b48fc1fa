"""Smoke test of benchmarks/bench_vs_scvi.py: genevae's side runs for one epoch on tiny
data, in-process and as the benchmark's subprocess, and the table renders. scvi-tools
is not installed in the development environment; its columns then read n/a."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_vs_scvi.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_vs_scvi", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(bench, tmp_path_factory):
    return bench.write_dataset("sim", tmp_path_factory.mktemp("bench"), n_cells=300, n_genes=60)


def test_genevae_side_trains_one_epoch_and_reports(bench, tiny, tmp_path) -> None:
    train_idx, val_idx = bench.split_of(tiny)
    assert len(train_idx) + len(val_idx) == tiny.n_cells
    result = bench.run_genevae(tiny.path, "nb", 1, tiny.label_key, val_idx, tmp_path / "z.npy")
    assert len(result["epoch_seconds"]) == 1 and result["epoch_seconds"][0] > 0
    assert result["n_train_cells"] == len(train_idx)
    assert math.isfinite(result["val_neg_elbo"]) and result["val_neg_elbo"] > 0
    assert result["peak_rss_mb"] > 0
    latent = np.load(tmp_path / "z.npy")
    assert latent.shape == (tiny.n_cells, bench.N_LATENT)
    result["latent"] = latent
    summary = bench.summarize([result], bench.labels_of(tiny))
    assert 0.0 <= summary["knn"] <= 1.0
    assert summary["cells_per_s"] == pytest.approx(len(train_idx) / result["epoch_seconds"][0])


def test_subprocess_worker_and_table_without_scvi(bench, tiny, tmp_path) -> None:
    result = bench.run_in_subprocess("genevae", tiny, "zinb", 1, tmp_path, "genevae_tiny")
    genevae = bench.summarize([result], bench.labels_of(tiny))
    table = bench.format_table([{"dataset": "tiny", "likelihood": "zinb", "genevae": genevae,
                                 "scvi": {}}])
    header, rule, row = table.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|") == 14
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["tiny", "zinb", f"{genevae['cells_per_s']:,.0f}"]
    assert cells[3] == cells[4] == "n/a"  # scvi cells/s and the ratio
    assert cells[5] == f"{genevae['val_neg_elbo']:.2f}"


def test_table_ratio_and_elbo_difference(bench) -> None:
    genevae = {"cells_per_s": 30_000.0, "val_neg_elbo": 1010.0, "knn": 0.9, "peak_rss_mb": 500.0}
    scvi = {"cells_per_s": 6_000.0, "val_neg_elbo": 1000.0, "knn": None, "peak_rss_mb": 700.0}
    row = bench.format_table([{"dataset": "d", "likelihood": "nb", "genevae": genevae,
                               "scvi": scvi}]).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "5.00" and cells[7] == "+1.00%" and cells[9] == "n/a"
    assert cells[12] == "n/a"  # no repeats given


def test_table_ratio_by_repeat_pairs_the_runs(bench) -> None:
    genevae = {"cells_per_s": 30_000.0, "cells_per_s_by_repeat": [24_000.0, 36_000.0],
               "val_neg_elbo": 1010.0, "knn": None, "peak_rss_mb": 500.0}
    scvi = {"cells_per_s": 10_000.0, "cells_per_s_by_repeat": [8_000.0, 12_000.0],
            "val_neg_elbo": 1000.0, "knn": None, "peak_rss_mb": 700.0}
    row = bench.format_table([{"dataset": "d", "likelihood": "nb", "genevae": genevae,
                               "scvi": scvi}]).splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")][12] == "3.00-3.00"
