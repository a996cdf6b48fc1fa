"""genevae sweep: the recommendation rule, and a small sweep end to end."""

import json

import pytest

from genevae.cli import main
from genevae.errors import GenevaeError
from genevae.sweep import parse_betas, recommend_beta


def _row(beta, elbo, n_active=5):
    return {"beta": beta, "heldout_neg_elbo": elbo, "n_active": n_active, "n_latent": 8,
            "kl_per_dim": 0.5, "verdict": "healthy"}


@pytest.mark.parametrize(
    ("elbos", "expected"),
    [
        ({0.5: 100.0, 1.0: 99.0, 2.0: 105.0}, 1.0),  # the best fit
        ({0.5: 100.0, 1.0: 99.0, 2.0: 99.4}, 2.0),  # 0.4% worse: the larger β compresses more
        ({0.5: 99.0, 1.0: 99.3, 2.0: 99.45}, 2.0),  # everything within 0.5%: the largest
    ],
)
def test_recommendation_table(elbos, expected):
    beta, reasoning = recommend_beta([_row(b, e) for b, e in elbos.items()])
    assert beta == expected
    assert f"β = {expected:g}" in reasoning


def test_parse_betas():
    assert parse_betas("1, 0.1,0.5") == [0.1, 0.5, 1.0]
    for bad in ("", "a,1", "-1", "1,1"):
        with pytest.raises(GenevaeError):
            parse_betas(bad)


def test_small_sweep_end_to_end(tmp_path, tiny_sc):
    data = tmp_path / "cells.h5ad"
    tiny_sc.write_h5ad(data)
    out = tmp_path / "sweep"
    status = main(["-q", "sweep", "--data", str(data), "--likelihood", "nb", "--condition", "batch",
                   "--label", "cell_type", "--n-latent", "3", "--n-hidden", "16", "--epochs", "3",
                   "--batch-size", "64", "--beta", "0.5,2", "--jobs", "2", "--out", str(out)])
    assert status == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["recommended_beta"] in (0.5, 2.0)
    assert [r["beta"] for r in sweep["runs"]] == [0.5, 2.0]
    for name in ("rate_distortion", "kl_and_active_units", "probe_accuracy"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    html = (out / "sweep.html").read_text()
    assert "Recommended β" in html and "<script" not in html
    assert (out / "beta_0.5" / "report.html").exists()
