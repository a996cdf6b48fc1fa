"""The KL-weight (β) schedule: which epochs KL can be judged on, and the warm-up rule.

KL depends on β: during a warm-up (β rising from 0) KL starts high and falls as β
grows, and a cyclical schedule (Fu et al. 2019) resets β to 0 every cycle. The
KL rules therefore judge KL only on epochs at full β, the schedule's maximum
within :data:`~genevae.diagnosis.thresholds.BETA_FULL_TOLERANCE`: after a
warm-up, or within the high-β parts of the cycles. While β is still rising at
the last epoch no epoch is at full β (the target is not known from the log), and
the warm-up rule says so: scvi-tools' default warm-up of 400 epochs never
finishes in a short run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import fix_train_longer, fmt, num
from genevae.diagnosis.thresholds import BETA_FULL_TOLERANCE, WARMUP_MIN_FULL_EPOCHS
from genevae.history.history import CONTROLLED_SCHEDULE, History

__all__ = ["BetaWindow", "beta_window", "kl_warmup_rule", "schedule_note"]

ScheduleKind = Literal["unlogged", "constant", "warmup", "cyclical", "controlled"]


@dataclass(frozen=True)
class BetaWindow:
    """Where β is at full strength.

    Attributes
    ----------
    kind
        ``"unlogged"`` (no ``kl_weight`` column: β assumed constant), ``"constant"``,
        ``"warmup"`` (β rises, never falls) or ``"cyclical"`` (β falls back at least once).
    judged
        Shape (n_epochs,): epochs at full β, where KL is judged. All epochs when β
        is unlogged or constant; none while a warm-up is still rising.
    beta_max
        The largest logged β.
    reset_epochs
        Epochs at which β fell back (cyclical schedules).
    still_rising
        β rose at the last epoch of a warm-up.
    """

    kind: ScheduleKind
    judged: np.ndarray
    beta_max: float | None = None
    reset_epochs: tuple[int, ...] = ()
    still_rising: bool = False

    @property
    def n_judged(self) -> int:
        return int(self.judged.sum())


def beta_window(history: History) -> BetaWindow:
    """Classify the logged β schedule and mark the epochs at full β.

    An epoch with a missing β has the β last logged before it (the first logged β
    before any): scvi-tools leaves ``kl_weight`` empty on some rows of ``history_``,
    and taking those as full β made a warm-up look like a cyclical schedule.
    """
    everything = np.ones(len(history), dtype=bool)
    beta = history.values("kl_weight")
    if beta is None:
        return BetaWindow("unlogged", everything)
    beta_max = float(np.nanmax(beta))
    if history.meta.kl_schedule == CONTROLLED_SCHEDULE:
        return BetaWindow("controlled", everything, beta_max)
    raw, beta = beta, _carry_forward(beta)
    tolerance = BETA_FULL_TOLERANCE * beta_max
    full = beta >= beta_max - tolerance
    steps = np.diff(beta)
    resets = tuple(int(e) for e in history.epochs[1:][steps < -tolerance])
    if resets:
        return BetaWindow("cyclical", full, beta_max, resets)
    if full.all():
        return BetaWindow("constant", everything, beta_max)
    logged = raw[~np.isnan(raw)]  # carried values are flat: the last logged step decides
    still_rising = bool(len(logged) >= 2 and logged[-1] > logged[-2])
    judged = np.zeros_like(full) if still_rising else full
    return BetaWindow("warmup", judged, beta_max, still_rising=still_rising)


def _carry_forward(beta: np.ndarray) -> np.ndarray:
    """Missing values of ``beta`` (shape (n,)) replaced by the last value before them,
    and leading ones by the first value logged."""
    logged = np.flatnonzero(~np.isnan(beta))
    index = np.maximum.accumulate(np.where(np.isnan(beta), -1, np.arange(len(beta))))
    return beta[np.where(index < 0, logged[0], index)]


def kl_warmup_rule(history: History) -> list[Finding]:
    """Warn while β is still rising at the last epoch (KL cannot be judged at full β;
    collapse is still judged on every epoch), or when a finished warm-up left too few
    epochs at full β to judge KL. Not a failure: runs of scvi-tools' default 400-epoch
    warm-up stopped after 30-100 epochs measured healthy (``benchmarks/diagnosis``).

    Series: ``kl_weight``. Returns [] when β is unlogged or constant.
    """
    window = beta_window(history)
    if window.kind in ("unlogged", "constant", "controlled"):
        return []
    beta = history.values("kl_weight")
    epochs = history.epochs
    n_epochs, last = len(history), int(epochs[-1])
    evidence: dict[str, float | int | str] = {
        "series": "kl_weight",
        "schedule": window.kind,
        "beta_first": num(beta[0]),
        "beta_last": num(beta[-1]),
        "beta_max": num(window.beta_max),
        "n_full_beta_epochs": window.n_judged,
    }
    if window.kind == "cyclical":
        evidence["reset_epochs"] = ", ".join(str(e) for e in window.reset_epochs)
        if window.n_judged < WARMUP_MIN_FULL_EPOCHS:
            return [Finding(
                codes.KL_WARMUP, Severity.WARN,
                f"Cyclical β: only {window.n_judged} epochs at full β "
                f"({fmt(window.beta_max)}) to judge KL",
                evidence,
                f"Lengthen the run (--epochs {2 * n_epochs}) or use fewer cycles (--n-cycles 2) "
                "so each cycle spends longer at full β.",
                last,
            )]
        return [Finding(
            codes.KL_WARMUP, Severity.OK,
            f"Cyclical β ({len(window.reset_epochs)} reset"
            f"{'s' if len(window.reset_epochs) > 1 else ''}): KL judged on the "
            f"{window.n_judged} epochs at full β ({fmt(window.beta_max)})",
            evidence,
        )]
    if window.still_rising:
        return [Finding(
            codes.KL_WARMUP, Severity.WARN,
            f"KL warm-up not finished: β still rising at the last epoch "
            f"({fmt(beta[0])} → {fmt(beta[-1])}) — KL cannot be judged at full β",
            evidence,
            f"{fix_train_longer(n_epochs)} Or shorten the warm-up (--kl-schedule linear "
            "--warmup-epochs 10): scvi-tools warms up over 400 epochs by default "
            "(n_epochs_kl_warmup), which shorter runs never finish.",
            last,
        )]
    full_from = int(epochs[np.argmax(window.judged)])
    evidence["full_beta_from_epoch"] = full_from
    if window.n_judged < WARMUP_MIN_FULL_EPOCHS:
        return [Finding(
            codes.KL_WARMUP, Severity.WARN,
            f"KL warm-up finished late (epoch {full_from}): only {window.n_judged} epochs at "
            f"full β ({fmt(window.beta_max)}) to judge KL",
            evidence,
            f"Train at least {WARMUP_MIN_FULL_EPOCHS} epochs at full β "
            f"(--epochs {n_epochs + WARMUP_MIN_FULL_EPOCHS - window.n_judged}) or shorten the "
            "warm-up (--warmup-epochs N).",
            full_from,
        )]
    return [Finding(
        codes.KL_WARMUP, Severity.OK,
        f"KL warm-up finished at epoch {full_from} (β = {fmt(window.beta_max)}); KL judged on "
        f"the {window.n_judged} epochs at full β",
        evidence,
    )]


def schedule_note(window: BetaWindow) -> str:
    """One sentence saying which epochs the β-dependent checks read."""
    if window.kind == "unlogged":
        return "No kl_weight column: β is taken as constant and every epoch is judged."
    if window.kind == "constant":
        return f"β is constant ({window.beta_max:g}): every epoch is judged."
    if window.kind == "controlled":
        return ("β is set by the KL controller (--kl-target): it follows the KL by design, so "
                "every epoch is judged and no warm-up is expected.")
    if window.kind == "cyclical":
        resets = ", ".join(str(e) for e in window.reset_epochs)
        return (
            f"β is cyclical (reset at epochs {resets}): KL, total loss and train/val are judged "
            f"within the high-β parts of the cycles ({window.n_judged} epochs at full β)."
        )
    if window.still_rising:
        return (
            "β is still rising at the last epoch: no epoch is at full β, so the β-dependent "
            "checks (KL, total loss, train/val) are skipped; collapse and divergence are "
            "judged on every epoch."
        )
    return (
        f"β warms up to {window.beta_max:g}: KL, total loss and train/val are judged on the "
        f"{window.n_judged} epochs at full β."
    )
