"""Acceptance of the latent-space checks on data with a known answer (issue 4).

- simulate bulk (20 true factors), conditioned on tissue, disease and batch, latent 64:
  about 20 active units;
- pure noise (each gene shuffled independently across cells): never healthy, and the
  held-out comparison with the no-latent baseline says why;
- PBMC (``bulk_labels``, NB): the latent probes at least as well as PCA of the same size.
"""

import json

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DATA

from genevae.commands.evaluate import evaluate_run
from genevae.commands.train import train_run
from genevae.config import apply_preset, build_config
from genevae.data.io import write_h5ad
from genevae.data.simulate import simulate_bulk

PBMC = DATA / "pbmc68k_reduced_counts.h5ad"


def _train(tmp_path, data, sections, label=None):
    sections = {k: dict(v) for k, v in sections.items()}
    sections.setdefault("data", {})["path"] = str(data)
    run = tmp_path / "run"
    train_run(build_config(sections), run, echo=lambda line: None, report=False)
    metrics = evaluate_run(run, label=label, embedding="pca", echo=lambda line: None)
    diagnosis = json.loads((run / "diagnosis.json").read_text())
    return metrics, diagnosis


def test_bulk_reference_design_has_about_20_active_units(tmp_path):
    continuous, _ = simulate_bulk(seed=0)
    path = tmp_path / "bulk.h5ad"
    write_h5ad(continuous, path)
    sections = apply_preset("reference")
    sections["data"] = {"condition_keys": ("tissue", "disease", "batch")}
    metrics, diagnosis = _train(tmp_path, path, sections)
    assert 17 <= metrics["latent"]["n_active"] <= 23
    assert metrics["iwae"]["iwae"] >= metrics["iwae"]["elbo"]
    assert metrics["latent"]["mi"] <= metrics["latent"]["mi_ceiling"] + 1e-9
    assert diagnosis["verdict"] == "healthy"


@pytest.mark.skipif(not PBMC.exists(), reason="shared data not present")
def test_pure_noise_is_never_healthy_and_the_baseline_says_why(tmp_path):
    adata = ad.read_h5ad(PBMC)
    X = adata.X.toarray()
    rng = np.random.default_rng(0)
    for j in range(X.shape[1]):
        X[:, j] = rng.permutation(X[:, j])
    noise = ad.AnnData(sp.csr_matrix(X), obs=adata.obs[["bulk_labels"]].copy())
    noise.var_names = adata.var_names
    path = tmp_path / "noise.h5ad"
    write_h5ad(noise, path)
    metrics, diagnosis = _train(tmp_path, path, {"model": {"likelihood": "nb"}}, "bulk_labels")
    assert diagnosis["verdict"] in ("posterior_collapse", "late_collapse", "uninformative_latent")
    heldout = metrics["heldout"]
    assert heldout["baseline_recon"] - heldout["model_recon"] <= heldout["model_kl"]
    codes = {f["code"]: f["severity"] for f in diagnosis["findings"]}
    assert codes["uninformative_latent"] == "fail"


@pytest.mark.skipif(not PBMC.exists(), reason="shared data not present")
def test_pbmc_probe_is_as_good_as_pca_of_the_same_size(tmp_path):
    sections = {"model": {"likelihood": "nb"}, "data": {"label_key": "bulk_labels"}}
    metrics, diagnosis = _train(tmp_path, PBMC, sections, "bulk_labels")
    probe = metrics["latent"]["probes"]["mean"]
    pca = metrics["latent"]["pca_baseline"]
    best = max(probe[c]["balanced_accuracy_mean"] for c in ("logistic", "knn"))
    best_pca = max(pca[c]["balanced_accuracy_mean"] for c in ("logistic", "knn"))
    assert best >= best_pca - 0.02
    assert diagnosis["verdict"] == "healthy"
