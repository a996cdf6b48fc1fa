"""Run every rule on a history and reach a verdict.

The verdict is ``"healthy"`` unless a finding *fails*; then it is the code of the
failing finding that comes first in :data:`~genevae.diagnosis.codes.VERDICT_PRIORITY`
(root causes and the problems that make the latent space useless first). Every red
flag of the reference document (KL near 0, KL above 2.0 per dimension,
reconstruction stuck, diverging train/val) and every run that has not levelled off
fails. Warnings do not change the verdict; the conclusion names them and their fixes
are listed. Notes (severity ``info``) explain a number and are neither.

Fixes are the recommendations of failing and warning findings, failing first,
then by :data:`~genevae.diagnosis.codes.VERDICT_PRIORITY`, with any sentence
already given by a more important fix removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from genevae.diagnosis import codes
from genevae.diagnosis.codes import FINDING_CODES, HEALTHY, VERDICT_PRIORITY
from genevae.diagnosis.findings import Diagnosis, Finding, Severity
from genevae.diagnosis.rules import RULES
from genevae.diagnosis.rules.schedule import beta_window, schedule_note
from genevae.diagnosis.units import unit_notes
from genevae.errors import GenevaeError
from genevae.history.history import History

__all__ = ["diagnose", "ranked_fixes", "should_fail", "HEALTHY_CONCLUSION"]

#: The reference document's conclusion for a healthy run.
HEALTHY_CONCLUSION = (
    "Training is healthy. The model is learning meaningful latent representations."
)

_SERIES_NOTE = (
    "Reconstruction and KL checks read the training series (train_recon, train_kl) as the "
    "reference document does; train ≈ val and overfitting compare train_loss with val_loss."
)

_PROBLEMS = {
    codes.DIVERGED: "training diverged at epoch {epoch}; the losses became non-finite or exploded",
    codes.POSTERIOR_COLLAPSE: (
        "posterior collapse from epoch {epoch}; the encoder ignores its input, so the latent "
        "space carries no information about the cells"
    ),
    codes.LATE_COLLAPSE: (
        "late posterior collapse; the latent space was used, then abandoned from epoch {epoch}"
    ),
    codes.OVERFITTING: "overfitting; validation loss has been rising since epoch {epoch}",
    codes.UNSTABLE: (
        "unstable optimisation; the loss jumps up between epochs (first at epoch {epoch})"
    ),
    codes.NOT_CONVERGED: (
        "not converged; the loss had not settled by epoch {epoch} (still falling, or its "
        "validation still swinging), so the model is not finished and its latent space not "
        "yet what it will be"
    ),
    codes.KL_RANGE: (
        "the posterior is far from the prior (KL above 2.0 per latent dimension from epoch "
        "{epoch}, the reference document's red flag)"
    ),
    codes.RECONSTRUCTION: "reconstruction is stuck high (the reference document's red flag)",
    codes.KL_NOT_LOGGED: (
        "the log has no KL, so whether the latent space is used, or has collapsed, cannot be "
        "judged"
    ),
}

#: Curve findings that the encoder's own measurement replaces when it is given: the
#: active-unit count from posterior means supersedes the count from per-dimension KL.
_SUPERSEDED_BY_ENCODER = {codes.PARTIAL_COLLAPSE: {codes.ACTIVE_UNITS, codes.POSTERIOR_COLLAPSE}}

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _priority(code: str) -> int:
    return VERDICT_PRIORITY.index(code) if code in VERDICT_PRIORITY else len(VERDICT_PRIORITY)


def _problems(findings: Iterable[Finding]) -> list[Finding]:
    """Failing and warning findings, most important first (stable for ties)."""
    flagged = [f for f in findings if f.severity.is_problem]
    return sorted(flagged, key=lambda f: (-f.severity.rank, _priority(f.code)))


def _label(code: str) -> str:
    return code.replace("_", " ").replace("kl", "KL")


def _conclusion(problems: list[Finding]) -> str:
    failing = [f for f in problems if f.severity is Severity.FAIL]
    if not failing:
        if not problems:
            return HEALTHY_CONCLUSION
        labels = ", ".join(dict.fromkeys(_label(f.code) for f in problems))
        plural = "s" if len(problems) > 1 else ""
        return (f"Training is healthy, with {len(problems)} warning{plural} to review ({labels}); "
                "none is a red flag of the reference document.")
    worst = failing[0]
    template = _PROBLEMS.get(worst.code)
    problem = template.format(epoch=worst.epoch) if template else worst.title
    conclusion = f"Training is not healthy: {problem}."
    n_more = len(problems) - 1
    if n_more:
        conclusion += f" {n_more} more problem{'s' if n_more > 1 else ''} listed above."
    return conclusion


def diagnose(history: History, extra_findings: Sequence[Finding] = ()) -> Diagnosis:
    """Judge a training history with every rule and reach a verdict.

    Parameters
    ----------
    history
        Per-epoch record of a run, from genevae or any reader.
    extra_findings
        Findings computed elsewhere (latent-space checks), merged after the rules'. A
        failing extra finding replaces the rules' passing finding of the same code, and
        the encoder's active-unit count replaces the curves' partial-collapse check:
        the encoder's evidence outranks what the loss curves suggest.

    Returns
    -------
    Diagnosis
        Findings in rule order, the verdict, a one-sentence conclusion and notes on
        units and on which epochs were judged.

    Raises
    ------
    GenevaeError
        When the history has no epochs, or none of the columns the rules read.
    """
    where = history.meta.path or "the history"
    if len(history) == 0:
        raise GenevaeError(
            f"{where} has no epochs: nothing to diagnose. Training may have stopped before "
            "the first epoch ended; point to the log of a run that completed at least one epoch."
        )
    findings = [finding for rule in RULES for finding in rule(history)]
    if not findings:
        columns = ", ".join(str(c) for c in history.frame.columns)
        raise GenevaeError(
            f"{where}: none of the columns the checks read were found (it has: {columns}). "
            "Diagnosis needs at least train_loss, train_recon or train_kl per epoch."
        )
    overruled = {f.code for f in extra_findings if f.severity is Severity.FAIL}
    findings = [f for f in findings if not (f.code in overruled and not f.severity.is_problem)]
    extra_codes = {f.code for f in extra_findings}
    findings = [f for f in findings
                if not extra_codes & _SUPERSEDED_BY_ENCODER.get(f.code, set())]
    findings.extend(extra_findings)
    problems = _problems(findings)
    failing = [f for f in problems if f.severity is Severity.FAIL]
    verdict = failing[0].code if failing else HEALTHY
    notes = [*history.meta.notes, *unit_notes(history), schedule_note(beta_window(history)),
             _SERIES_NOTE]
    return Diagnosis(tuple(findings), verdict, _conclusion(problems), tuple(notes))


def ranked_fixes(diagnosis: Diagnosis) -> list[str]:
    """Recommendations of failing and warning findings, most important first.

    Failing before warning, then by :data:`~genevae.diagnosis.codes.VERDICT_PRIORITY`; a
    sentence already given by a more important fix is dropped from the later ones.
    """
    seen: set[str] = set()
    fixes = []
    for finding in _problems(diagnosis.findings):
        sentences = [s for s in _SENTENCE.split(finding.recommendation.strip()) if s]
        new = [s for s in sentences if s not in seen]
        seen.update(new)
        if new:
            fixes.append(" ".join(new))
    return fixes


def should_fail(
    diagnosis: Diagnosis, fail_on: Iterable[str], extra_codes: Iterable[str] = ()
) -> bool:
    """Whether ``--fail-on`` should fail the pipeline for this diagnosis.

    A listed code fails the pipeline when a finding with that code is present with
    severity warn or fail. Items may hold several codes separated by commas.

    Parameters
    ----------
    diagnosis
        The diagnosis to check.
    fail_on
        Finding codes, e.g. ``["posterior_collapse", "diverged"]``.
    extra_codes
        Codes of checks outside :data:`~genevae.diagnosis.codes.FINDING_CODES` (latent-space
        checks) that are valid even when absent from this diagnosis.

    Raises
    ------
    GenevaeError
        For a code no check can produce (a typo), naming the valid codes.
    """
    wanted = {code.strip() for item in fail_on for code in item.split(",") if code.strip()}
    known = FINDING_CODES | set(extra_codes) | set(diagnosis.codes())
    unknown = sorted(wanted - known)
    if unknown:
        raise GenevaeError(
            f"--fail-on {', '.join(unknown)}: no check produces "
            f"{'these codes' if len(unknown) > 1 else 'this code'}. "
            f"Choose from: {', '.join(sorted(known))}."
        )
    return any(f.code in wanted and f.severity.is_problem for f in diagnosis.findings)
