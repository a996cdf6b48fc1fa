"""Text and JSON renderings; the reference log's diagnosis (acceptance)."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import REFERENCE_LOG

from genevae.diagnosis.engine import HEALTHY_CONCLUSION, diagnose, ranked_fixes
from genevae.diagnosis.findings import Diagnosis, Finding, Severity
from genevae.diagnosis.render import render_json, render_text
from genevae.history.history import History, HistoryMeta

_LINE = re.compile(
    r"epoch (\d+) \| train loss=(\S+) recon=(\S+) kl=(\S+) \| val loss=(\S+)"
)
_COLUMNS = ("train_loss", "train_recon", "train_kl", "val_loss")


def reference_history(loss_reduction: str) -> History:
    """The reference log parsed with a regex (the real readers live elsewhere)."""
    records = []
    for match in map(_LINE.match, REFERENCE_LOG.read_text().splitlines()):
        epoch, *numbers = match.groups()
        values = dict(zip(_COLUMNS, map(float, numbers), strict=True))
        records.append({"epoch": int(epoch), **values})
    return History.from_records(records, HistoryMeta("reference-text", loss_reduction))


REFERENCE_CHECKS = [
    "✅ Reconstruction improving (0.84 → 0.24)",
    "✅ KL increasing (0.05 → 0.33) — latent space is being used",
    "✅ KL in healthy range (0.1–1.0)",
    "✅ No posterior collapse",
]


@pytest.mark.parametrize("loss_reduction", ["unknown", "mean"])
def test_reference_log_gives_the_reference_diagnosis(loss_reduction):
    diagnosis = diagnose(reference_history(loss_reduction))
    text = render_text(diagnosis)
    lines = text.splitlines()
    assert lines[0] == "Diagnosis:"
    assert lines[1:5] == [f"- {check}" for check in REFERENCE_CHECKS]
    for check in REFERENCE_CHECKS:
        assert text.count(check) == 1
    assert f"Conclusion: {HEALTHY_CONCLUSION}" in lines
    assert diagnosis.verdict == "healthy" and diagnosis.healthy
    assert "⚠️" not in text and "❌" not in text and "Fixes" not in text


def test_reference_log_explains_validation_below_training():
    diagnosis = diagnose(reference_history("unknown"))
    finding = next(f for f in diagnosis.findings if f.code == "val_below_train")
    assert finding.severity is Severity.INFO  # a note, not a warning (issue 18, point 4)
    assert "ℹ️ Validation below training" in render_text(diagnosis)
    assert finding.title.startswith("Validation below training in 30 of 30 epochs")


def _problem_diagnosis() -> Diagnosis:
    collapse = Finding(
        "posterior_collapse", Severity.FAIL, "Posterior collapse: KL per dimension below 0.01",
        {"kl_last": 0.0003, "since_epoch": 8, "loss": math.nan, "peak": math.inf},
        "Lower β (--beta 0.1).", 8,
    )
    slow = Finding("not_converged", Severity.WARN, "Not converged", {"rate": 0.02},
                   "Train longer (--epochs 60).", 30)
    fine = Finding("reconstruction", Severity.OK, "Reconstruction improving (0.84 → 0.24)")
    return Diagnosis((fine, slow, collapse), "posterior_collapse",
                     "Training is not healthy: posterior collapse.", ("KL is summed.",))


def test_text_layout():
    text = render_text(_problem_diagnosis())
    assert text.splitlines() == [
        "Diagnosis:",
        "- ✅ Reconstruction improving (0.84 → 0.24)",
        "- ⚠️ Not converged",
        "    evidence: rate=0.02",
        "- ❌ Posterior collapse: KL per dimension below 0.01",
        "    evidence: kl_last=0.0003, since_epoch=8, loss=nan, peak=inf",
        "Notes:",
        "- KL is summed.",
        "Conclusion: Training is not healthy: posterior collapse.",
        "Fixes, most important first:",
        "1. Lower β (--beta 0.1).",
        "2. Train longer (--epochs 60).",
    ]


def test_json_round_trip_has_stable_keys():
    diagnosis = _problem_diagnosis()
    document = json.loads(render_json(diagnosis))
    assert list(document) == ["verdict", "healthy", "conclusion", "notes", "findings", "fixes"]
    assert document["verdict"] == "posterior_collapse" and document["healthy"] is False
    assert document["fixes"] == ranked_fixes(diagnosis)
    collapse = document["findings"][2]
    assert list(collapse) == ["code", "severity", "title", "evidence", "recommendation", "epoch"]
    assert collapse["severity"] == "fail" and collapse["epoch"] == 8
    assert collapse["evidence"] == {"kl_last": 0.0003, "since_epoch": 8, "loss": "nan",
                                    "peak": "inf"}
    assert document["findings"][0]["epoch"] is None


def test_json_of_the_reference_log():
    document = json.loads(render_json(diagnose(reference_history("unknown"))))
    assert document["healthy"] is True and document["fixes"] == []
    assert [f["title"] for f in document["findings"][:4]] == [c[2:] for c in REFERENCE_CHECKS]
