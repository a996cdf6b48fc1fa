"""Reconstruction improving, or stuck high (reference doc, "Healthy Training Signs"
and "Summary": red flag "Stuck high")."""

from __future__ import annotations

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import fmt, lower_beta, num, series
from genevae.diagnosis.thresholds import RECON_MIN_IMPROVEMENT
from genevae.diagnosis.units import max_beta
from genevae.history.history import History

__all__ = ["reconstruction_rule"]



def _fix(history: History) -> str:
    return (f"Lower β ({lower_beta(max_beta(history))}) so reconstruction weighs more, give the "
            "decoder more capacity (--n-hidden 256, --n-layers 2), and check that --likelihood "
            "suits the data (nb for counts, gaussian for normalised values).")


def reconstruction_rule(history: History) -> list[Finding]:
    """Reconstruction from the first to the last epoch.

    Improving when it fell by at least ``RECON_MIN_IMPROVEMENT`` of its first-epoch
    magnitude; otherwise it fails ("Stuck high" is a red flag of the reference
    document's summary). All epochs count (reconstruction is not weighted by β). Series:
    ``train_recon``, else ``val_recon``.
    """
    recon = series(history, ("train_recon", "val_recon"))
    if recon is None or len(recon) < 2:
        return []
    first, last = recon.first, recon.last
    improvement = (first - last) / abs(first) if first else float(last < first)
    span = f"({fmt(first)} → {fmt(last)})"
    evidence: dict[str, float | int | str] = {
        "series": recon.column,
        "recon_first": num(first),
        "recon_last": num(last),
        "epoch_first": int(recon.epochs[0]),
        "epoch_last": int(recon.epochs[-1]),
        "improvement": num(improvement),
        "min_improvement": RECON_MIN_IMPROVEMENT,
    }
    if improvement >= RECON_MIN_IMPROVEMENT:
        return [Finding(codes.RECONSTRUCTION, Severity.OK, f"Reconstruction improving {span}",
                        evidence)]
    title = "Reconstruction getting worse" if improvement < 0 else "Reconstruction stuck high"
    return [Finding(codes.RECONSTRUCTION, Severity.FAIL, f"{title} {span}", evidence, _fix(history),
                    int(recon.epochs[-1]))]
