"""genevae sweep on data with a known answer (issue 8, acceptance 3, at test size).

5 true factors of the reference design in a 16-dimensional latent: at low β the
encoder spreads the 5 directions over more axes, so the sweep must find the β at
which the active units are the 5 factors, and its page must render in a browser.
"""

import json
from pathlib import Path

import pytest
from chromium import check_rendered_page, require_chromium

from genevae.cli import main

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
N_FACTORS = 5


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from genevae.data.simulate import simulate_bulk

    root = tmp_path_factory.mktemp("sweep_known_answer")
    continuous, _ = simulate_bulk(n_samples=1500, n_genes=200, n_factors=N_FACTORS, seed=0)
    continuous.write_h5ad(root / "bulk.h5ad")
    out = root / "sweep"
    status = main(["-q", "sweep", "--data", str(root / "bulk.h5ad"), "--condition", "tissue",
                   "--condition", "disease", "--condition", "batch", "--n-latent", "16",
                   "--epochs", "50", "--beta", "1,4,8", "--jobs", "2", "--out", str(out)])
    assert status == 0
    return out


def test_sweep_recommends_the_true_factor_count(sweep):
    result = json.loads((sweep / "sweep.json").read_text())
    rows = {r["beta"]: r for r in result["runs"]}
    chosen = rows[result["recommended_beta"]]
    assert abs(chosen["n_active"] - N_FACTORS) <= 1, result["reasoning"]
    assert chosen["n_directions"] == N_FACTORS
    assert rows[1.0]["n_active"] > chosen["n_active"]  # the spread latent the rule steps past
    assert "axis-aligned" in result["reasoning"]


def test_sweep_page_renders_in_headless_chromium(sweep):
    require_chromium()
    check_rendered_page(sweep / "sweep.html", 2, "Recommended β", ARTIFACTS / "sweep.png")
