"""A diagnostic result is data: rendering it as text, JSON or HTML is separate."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from genevae.diagnosis.codes import HEALTHY

__all__ = ["Severity", "Finding", "Diagnosis"]


class Severity(StrEnum):
    """How bad a finding is; ordered ok = info < warn < fail.

    ``info`` is a note that explains a number and asks for nothing (validation below
    training under dropout, an MI estimate); ``warn`` is worth a look but leaves the
    run healthy; ``fail`` makes the run unhealthy, and the reference document's red
    flags always fail.
    """

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return {"ok": 0, "info": 0, "warn": 1, "fail": 2}[self.value]

    @property
    def is_problem(self) -> bool:
        """Whether the finding asks for attention (warn or fail)."""
        return self.rank > 0

    @property
    def symbol(self) -> str:
        """The reference document's marks, and ℹ️ for a note."""
        return {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}[self.value]


@dataclass(frozen=True)
class Finding:
    """One check's outcome.

    Attributes
    ----------
    code
        Stable machine name, e.g. ``"posterior_collapse"``; ``--fail-on`` uses it.
    severity
        ok, info, warn or fail.
    title
        One line with the numbers, in the reference style:
        ``"KL increasing (0.05 → 0.33) — latent space is being used"``.
    evidence
        The numbers and epochs behind the title.
    recommendation
        What to change, as concrete options; empty when nothing needs changing.
    epoch
        The epoch at which the problem appears, where that is meaningful.
    """

    code: str
    severity: Severity
    title: str
    evidence: dict[str, float | int | str] = field(default_factory=dict)
    recommendation: str = ""
    epoch: int | None = None


@dataclass(frozen=True)
class Diagnosis:
    """All findings for a history plus the overall verdict.

    Attributes
    ----------
    findings
        In the order the rules ran.
    verdict
        ``"healthy"``, or the code of the worst failing finding.
    conclusion
        One plain-language sentence, followed by ranked fixes where needed.
    notes
        Unit conversions and assumptions, stated so the user can check them.
    """

    findings: tuple[Finding, ...]
    verdict: str
    conclusion: str
    notes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.verdict == HEALTHY

    def codes(self, severity: Severity | None = None) -> list[str]:
        """Codes of the findings, optionally only those of one severity."""
        return [f.code for f in self.findings if severity is None or f.severity == severity]
