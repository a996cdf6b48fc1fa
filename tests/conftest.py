"""Shared fixtures: small seeded datasets with a known design."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
REFERENCE_LOG = SHARED / "reference" / "healthy_bulk_cvae.log"


@pytest.fixture(scope="session")
def tiny_sc():
    """300 cells x 60 genes of NB counts, 3 cell types, 2 batches."""
    from genevae.data.simulate import simulate_sc

    return simulate_sc(n_cells=300, n_genes=60, n_cell_types=3, n_batches=2, seed=1)


@pytest.fixture(scope="session")
def tiny_bulk():
    """(continuous, counts) 400 samples x 80 genes of the reference design with 4 factors."""
    from genevae.data.simulate import simulate_bulk

    return simulate_bulk(n_samples=400, n_genes=80, n_factors=4, seed=2)


#: History columns the streaming and distributed tests compare between two runs.
LOSS_COLUMNS = ["train_loss", "val_loss", "train_recon", "val_recon", "train_running_loss"]


@pytest.fixture(scope="session")
def sc_h5ad(tmp_path_factory):
    """An .h5ad of 600 cells x 60 genes of NB counts (sparse X), 3 cell types, 2 batches."""
    from genevae.data.io import write_h5ad
    from genevae.data.simulate import simulate_sc

    path = tmp_path_factory.mktemp("sc_h5ad") / "cells.h5ad"
    write_h5ad(simulate_sc(n_cells=600, n_genes=60, n_cell_types=3, n_batches=2, seed=1), path)
    return path


def tiny_config(**sections):
    """A fast config: small network, few epochs; override with section dicts."""
    from genevae.config import build_config

    base = {
        "model": {"likelihood": "nb", "n_latent": 4, "n_hidden": 32},
        "train": {"epochs": 3, "batch_size": 64, "seed": 0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return build_config(base)
