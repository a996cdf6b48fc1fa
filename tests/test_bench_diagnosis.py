"""The committed diagnosis-benchmark corpus is well-formed (issue 18).

Reads the committed ``truth.json`` files and the scoring rule only: no training, no
scvi-tools.
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


def _assert_issue_floor(runs: list[dict]) -> None:
    """At least the issue's number of runs, datasets and text line styles."""
    assert len(runs) >= MIN_RUNS
    assert len({r["dataset"] for r in runs}) >= MIN_DATASETS
    assert len({r["style"] for r in runs if r["source"] in TEXT_SOURCES}) >= MIN_TEXT_STYLES


def test_corpus_size_and_variety(runs):
    _assert_issue_floor(runs)
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


BENCH = CORPUS.parent
CORPORA = ("corpus", "heldout", "heldout2", "heldout3", "heldout4", "heldout5")


@pytest.fixture(scope="module")
def bench_modules():
    """``retruth`` and ``score`` from benchmarks/diagnosis (standard library only)."""
    import importlib
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("retruth"), importlib.import_module("score")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", CORPORA)
def test_stored_true_classes_follow_the_current_truth(name, bench_modules):
    # A revision of truth.py is applied to every corpus (retruth.py), never to some.
    retruth, _ = bench_modules
    for run in json.loads((BENCH / name / "truth.json").read_text())["runs"]:
        assert retruth.retruth(run)[0] == run["true_class"], run["run_id"]


@pytest.mark.parametrize("name", ["heldout3", "heldout4", "heldout5"])
def test_the_final_held_out_corpora_meet_the_issues_floor(name):
    _assert_issue_floor(json.loads((BENCH / name / "truth.json").read_text())["runs"])


@pytest.mark.parametrize(
    ("style", "truth", "answer", "right", "strict"),
    [
        ("pytorch_example", "healthy", "cannot_judge", True, False),
        ("pytorch_example", "collapse", "cannot_judge", True, False),
        ("pytorch_example", "overfitting", "cannot_judge", False, False),
        ("pytorch_example", "overfitting", "overfitting", True, True),
        ("reference", "healthy", "cannot_judge", False, False),  # this log has KL
        ("pytorch_example", "collapse", "healthy", False, False),
    ],
)
def test_a_log_without_kl_is_scored_on_what_it_can_show(style, truth, answer, right, strict,
                                                         bench_modules):
    _, score = bench_modules
    run, given = {"style": style, "true_class": truth}, {"class": answer}
    assert score.is_right(run, given) is right
    assert score.is_right(run, given, strict=True) is strict
