"""--auto-fix: the remedy table, and the reference document's real-data failure fixed (issue 8)."""

import json

import pytest
from conftest import DATA

from genevae.commands.autofix import next_remedy
from genevae.commands.train import train_run
from genevae.config import build_config
from genevae.diagnosis.findings import Diagnosis, Finding, Severity

PBMC = DATA / "pbmc68k_reduced_counts.h5ad"


def _diagnosis(verdict, effective_beta=None):
    findings = []
    if effective_beta is not None:
        findings.append(Finding("effective_beta", Severity.WARN, "effective β",
                                {"effective_beta": effective_beta}))
    return Diagnosis(tuple(findings), verdict, "")


@pytest.mark.parametrize(
    ("objective", "model", "train", "verdict", "effective", "change"),
    [
        ({"loss_reduction": "mean", "beta": 0.5}, {}, {}, "posterior_collapse", 12.0,
         ("objective", "loss_reduction", "sum")),
        ({}, {}, {}, "posterior_collapse", None, ("objective", "kl_schedule", "linear")),
        ({"kl_schedule": "linear"}, {}, {}, "late_collapse", None, ("objective", "beta", 0.25)),
        ({"kl_schedule": "linear", "beta": 0.1}, {}, {}, "uninformative_latent", None,
         ("objective", "free_bits", 0.1)),
        ({"kl_schedule": "linear", "beta": 0.1, "free_bits": 0.1}, {"n_hidden": 128}, {},
         "posterior_collapse", None, ("model", "n_hidden", 64)),
        ({}, {}, {"lr": 1e-2}, "diverged", None, ("train", "lr", 1e-3)),
    ],
)
def test_remedy_table(objective, model, train, verdict, effective, change):
    config = build_config({"objective": objective, "model": model, "train": train})
    if objective.get("kl_schedule") == "linear" and "beta" not in objective:
        config = build_config({"objective": {**objective, "beta": 1.0}})
    remedy = next_remedy(config, _diagnosis(verdict, effective))
    assert remedy is not None
    section, key, value = change
    assert getattr(getattr(remedy[0], section), key) == pytest.approx(value)
    assert remedy[1]


def test_healthy_runs_and_exhausted_remedies_stop():
    assert next_remedy(build_config({}), _diagnosis("healthy")) is None
    assert next_remedy(build_config({}), _diagnosis("overfitting")) is None
    spent = build_config({"objective": {"kl_schedule": "linear", "beta": 0.1, "free_bits": 0.1},
                          "model": {"n_hidden": 16}})
    assert next_remedy(spent, _diagnosis("posterior_collapse")) is None


@pytest.mark.skipif(not PBMC.exists(), reason="shared data not present")
def test_reference_failure_on_pbmc_is_diagnosed_and_fixed(tmp_path):
    """NB, mean reduction, β 0.5, latent 32, hidden 256, 2 layers: collapse; then fixed."""
    config = build_config({
        "data": {"path": str(PBMC), "label_key": "bulk_labels"},
        "model": {"likelihood": "nb", "n_latent": 32, "n_hidden": 256, "n_layers": 2},
        "objective": {"beta": 0.5, "loss_reduction": "mean"},
        "train": {"epochs": 150},
    })
    out = tmp_path / "run"
    train_run(config, out, echo=lambda line: None, auto_fix=True, max_attempts=3)
    attempts = json.loads((out / "attempts.json").read_text())
    assert attempts[0]["verdict"] == "posterior_collapse"
    assert len(attempts) >= 2 and attempts[-1]["verdict"] == "healthy"
    latent = json.loads((out / attempts[-1]["folder"] / "metrics.json").read_text())["latent"]
    assert latent["n_active"] >= 5
    best = max(latent["probes"]["mean"][c]["balanced_accuracy_mean"] for c in ("logistic", "knn"))
    pca = max(latent["pca_baseline"][c]["balanced_accuracy_mean"] for c in ("logistic", "knn"))
    assert best >= pca - 0.02
    report = (out / "report.html").read_text()
    assert "Attempt 1" in report and "Attempt 2" in report
