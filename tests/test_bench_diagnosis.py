"""The committed diagnosis-benchmark corpus is well-formed (issue 18).

Reads ``benchmarks/diagnosis/corpus/truth.json`` only: no training, no scvi-tools.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "diagnosis" / "corpus"
TRUE_CLASSES = {"healthy", "collapse", "not_converged", "diverged", "overfitting"}
TEXT_SOURCES = {"loop", "keras"}
#: Issue 18's floor for the corpus.
MIN_RUNS, MIN_DATASETS, MIN_TEXT_STYLES, MIN_SCVI_RUNS = 60, 3, 8, 20


@pytest.fixture(scope="module")
def runs() -> list[dict]:
    return json.loads((CORPUS / "truth.json").read_text())["runs"]


def test_corpus_size_and_variety(runs):
    assert len(runs) >= MIN_RUNS
    assert len({r["dataset"] for r in runs}) >= MIN_DATASETS
    assert len({r["style"] for r in runs if r["source"] in TEXT_SOURCES}) >= MIN_TEXT_STYLES
    assert sum(r["source"] == "scvi" for r in runs) >= MIN_SCVI_RUNS
    assert {r["source"] for r in runs} >= {"scvi", "lightning_csv", "lightning_tensorboard",
                                           "loop", "keras"}


def test_every_run_has_a_log_and_a_measured_truth(runs):
    assert len({r["run_id"] for r in runs}) == len(runs)
    for run in runs:
        assert (CORPUS / run["log"]).exists(), run["run_id"]
        assert run["true_class"] in TRUE_CLASSES, run["run_id"]
        loss = run["measured"]["heldout_loss_by_epoch"]
        assert len(loss) == 2 * run["n_epochs"] + 1, run["run_id"]
        assert run["n_epochs_trained"] == 2 * run["n_epochs"]


def test_each_true_class_has_several_runs(runs):
    classes = [r["true_class"] for r in runs]
    assert {c for c in TRUE_CLASSES if classes.count(c) >= 2} == TRUE_CLASSES
