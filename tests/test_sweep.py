"""genevae sweep: the recommendation rule, and a small sweep end to end."""

import json

import pytest

from genevae.cli import main
from genevae.commands.sweep import alignment_slack, is_axis_aligned, parse_betas, recommend_beta
from genevae.errors import GenevaeError


def _row(beta, elbo, n_active=5, n_directions=None, n_latent=8):
    return {"beta": beta, "heldout_neg_elbo": elbo, "n_active": n_active, "n_latent": n_latent,
            "n_directions": n_directions, "kl_per_dim": 0.5, "verdict": "healthy"}


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


@pytest.mark.parametrize(
    ("n_active", "n_directions", "aligned"),
    [(20, 20, True), (22, 20, True), (23, 20, False), (54, 20, False), (2, 1, True), (3, 1, False),
     (0, 0, False), (5, None, False)],
)
def test_alignment_table(n_active, n_directions, aligned):
    assert is_axis_aligned(n_active, n_directions) is aligned
    assert alignment_slack(20) == 2 and alignment_slack(3) == 1


# (β, held-out −ELBO, active units, informative directions): the shape of simulate bulk,
# 64 latent dimensions, 20 true factors; low β spreads the 20 directions over every axis.
BULK = [(0.5, 1604.0, 64, 40), (1.0, 1585.0, 64, 24), (2.0, 1590.0, 54, 20), (4.0, 1608.0, 20, 20),
        (8.0, 1630.0, 19, 19)]


@pytest.mark.parametrize(
    ("runs", "expected", "says"),
    [
        (BULK, 4.0, "axis-aligned"),  # the only aligned βs are 4 and 8; 4 fits better
        ([r if r[0] != 2.0 else (2.0, 1590.0, 21, 20) for r in BULK], 2.0, "costs 0.3%"),
        ([r for r in BULK if r[0] <= 2.0], 2.0, "Extend the grid upward (--beta ...,4)"),
        ([(0.5, 100.0, 8, 8), (1.0, 99.0, 8, 8), (2.0, 99.3, 7, 7)], 2.0, "axis-aligned"),
    ],
)
def test_recommendation_prefers_an_axis_aligned_latent(runs, expected, says):
    rows = [_row(b, e, a, d, n_latent=64) for b, e, a, d in runs]
    beta, reasoning = recommend_beta(rows)
    assert beta == expected
    assert says in reasoning


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
