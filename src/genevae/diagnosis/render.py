"""A diagnosis as text (the reference document's style) or JSON.

Text::

    Diagnosis:
    - ✅ Reconstruction improving (0.84 → 0.24)
    - ❌ Posterior collapse: KL per dimension below 0.01 for 12 epochs (0.0003 at the end)
        evidence: series=train_kl, kl_last=0.0003, ...
    Notes:
    - KL is the per-element mean (reference convention): ...
    Conclusion: Training is not healthy: posterior collapse from epoch 8; ...
    Fixes, most important first:
    1. Lower β (--beta 0.1), ...

JSON keys, in this order: ``verdict``, ``healthy``, ``conclusion``, ``notes``,
``findings`` (each ``code``, ``severity``, ``title``, ``evidence``,
``recommendation``, ``epoch``) and ``fixes``. Non-finite evidence numbers are
written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so the output is
strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from genevae.diagnosis.engine import ranked_fixes
from genevae.diagnosis.findings import Diagnosis, Finding, Severity

__all__ = ["render_text", "render_json", "parse_json"]


def _evidence_text(finding: Finding) -> str:
    return ", ".join(f"{key}={value}" for key, value in finding.evidence.items())


def render_text(diagnosis: Diagnosis) -> str:
    """The diagnosis as lines for a terminal or ``diagnosis.txt`` (no trailing newline).

    Failing and warning findings get an indented evidence line.
    """
    lines = ["Diagnosis:"]
    for finding in diagnosis.findings:
        lines.append(f"- {finding.severity.symbol} {finding.title}")
        if finding.severity.is_problem and finding.evidence:
            lines.append(f"    evidence: {_evidence_text(finding)}")
    if diagnosis.notes:
        lines.append("Notes:")
        lines.extend(f"- {note}" for note in diagnosis.notes)
    lines.append(f"Conclusion: {diagnosis.conclusion}")
    fixes = ranked_fixes(diagnosis)
    if fixes:
        lines.append("Fixes, most important first:")
        lines.extend(f"{rank}. {fix}" for rank, fix in enumerate(fixes, start=1))
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def render_json(diagnosis: Diagnosis) -> str:
    """The diagnosis as a JSON document with stable keys (see the module docstring)."""
    document = {
        "verdict": diagnosis.verdict,
        "healthy": diagnosis.healthy,
        "conclusion": diagnosis.conclusion,
        "notes": list(diagnosis.notes),
        "findings": [
            {
                "code": f.code,
                "severity": f.severity.value,
                "title": f.title,
                "evidence": {key: _plain(value) for key, value in f.evidence.items()},
                "recommendation": f.recommendation,
                "epoch": f.epoch,
            }
            for f in diagnosis.findings
        ],
        "fixes": ranked_fixes(diagnosis),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def parse_json(text: str) -> Diagnosis:
    """The :class:`Diagnosis` that :func:`render_json` wrote (``diagnosis.json``); the
    ``healthy`` and ``fixes`` keys are derived, so they are not read back."""
    document = json.loads(text)
    findings = tuple(
        Finding(
            code=f["code"],
            severity=Severity(f["severity"]),
            title=f["title"],
            evidence={key: _NON_FINITE.get(value, value) if isinstance(value, str) else value
                      for key, value in f["evidence"].items()},
            recommendation=f["recommendation"],
            epoch=f["epoch"],
        )
        for f in document["findings"]
    )
    return Diagnosis(findings, document["verdict"], document["conclusion"],
                     tuple(document["notes"]))
