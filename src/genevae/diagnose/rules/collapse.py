"""Posterior collapse: the encoder ignores its input (reference doc, "Posterior Collapse").

Three shapes:

- **posterior collapse**: KL per dimension stays below
  :data:`~genevae.diagnose.thresholds.COLLAPSE_KL_PER_DIM` for the last
  :data:`~genevae.diagnose.thresholds.COLLAPSE_MIN_EPOCHS` full-β epochs, never
  having reached the healthy band;
- **late collapse**: the same end, after KL had reached the healthy band;
- **partial collapse**: the average looks fine but most latent dimensions carry
  no information (reference facts: 20 of 64 active in the healthy example run).
"""

from __future__ import annotations

import numpy as np

from genevae.diagnose.findings import Finding, Severity
from genevae.diagnose.rules.common import (
    FIX_LOSS_REDUCTION,
    fix_collapse,
    fmt,
    lower_beta,
    num,
    trailing_run,
)
from genevae.diagnose.rules.kl import fmt_kl, kl_series
from genevae.diagnose.rules.schedule import beta_window
from genevae.diagnose.thresholds import (
    ACTIVE_DIM_KL,
    COLLAPSE_KL_PER_DIM,
    COLLAPSE_MIN_EPOCHS,
    EFFECTIVE_BETA_WARN,
    LATE_COLLAPSE_MIN_PEAK,
    PARTIAL_COLLAPSE_DEAD_SHARE,
)
from genevae.diagnose.units import max_beta, reduction_multiplier
from genevae.history.history import History

__all__ = ["collapse_rule", "partial_collapse_rule", "collapse_fix"]


def collapse_fix(history: History) -> str:
    """The fix for collapse; the loss-reduction fix first when it inflates β."""
    multiplier, beta = reduction_multiplier(history.meta), max_beta(history)
    if multiplier is not None and beta is not None and beta * multiplier > EFFECTIVE_BETA_WARN:
        return f"{FIX_LOSS_REDUCTION} {fix_collapse(beta)}"
    return fix_collapse(beta)


def _collapse_mask(history: History) -> np.ndarray:
    """Full-β epochs; all epochs while a warm-up is still rising (KL ≈ 0 at a small β
    is collapse all the more)."""
    judged = beta_window(history).judged
    return judged if judged.any() else np.ones_like(judged)


def collapse_rule(history: History) -> list[Finding]:
    """Posterior collapse or late collapse: KL ≈ 0 sustained at the end of the run.

    Series: ``train_kl`` per dimension (the total when ``n_latent`` is unknown for a
    summed KL). Returns [] when KL has been ≈ 0 for fewer than
    ``COLLAPSE_MIN_EPOCHS`` epochs at the end: too early to tell.
    """
    found = kl_series(history, _collapse_mask(history))
    if found is None:
        return []
    kl, scale = found
    n_low = trailing_run(kl.values < COLLAPSE_KL_PER_DIM)
    what = "KL per dimension" if scale.bands_apply else "total KL"
    evidence: dict[str, float | int | str] = {
        "series": kl.column,
        "kl_last": num(kl.last),
        "threshold": COLLAPSE_KL_PER_DIM,
        "n_epochs_below": n_low,
        "min_epochs": COLLAPSE_MIN_EPOCHS,
    }
    if n_low == 0:
        return [Finding("posterior_collapse", Severity.OK, "No posterior collapse", evidence)]
    if n_low < COLLAPSE_MIN_EPOCHS:
        return []
    since = int(kl.epochs[-n_low])
    evidence["since_epoch"] = since
    before = kl.values[:-n_low]
    if len(before) and before.max() >= LATE_COLLAPSE_MIN_PEAK:
        peak_at = int(np.argmax(before))
        evidence["kl_peak"] = num(before[peak_at])
        evidence["peak_epoch"] = int(kl.epochs[peak_at])
        return [Finding(
            "late_collapse", Severity.FAIL,
            f"Late collapse: KL fell from {fmt(before[peak_at])} (epoch "
            f"{kl.epochs[peak_at]}) to {fmt_kl(kl.last)}; {what} below "
            f"{COLLAPSE_KL_PER_DIM:g} for {n_low} epochs",
            evidence,
            f"The latent space was used until about epoch {since - 1}, then abandoned: keep "
            f"the checkpoint from before epoch {since}. {collapse_fix(history)}",
            since,
        )]
    return [Finding(
        "posterior_collapse", Severity.FAIL,
        f"Posterior collapse: {what} below {COLLAPSE_KL_PER_DIM:g} for {n_low} epochs "
        f"({fmt_kl(kl.last)} at the end)",
        evidence, collapse_fix(history), since,
    )]


def _active_dims(history: History, mask: np.ndarray) -> tuple[int, int, int, str, str] | None:
    """(n_active, n_dims, epoch, series, what makes a dimension inactive) at the last
    full-β epoch with data."""
    for split in ("train", "val"):
        per_dim = history.kl_per_dim(split)
        if per_dim is None:
            continue
        rows = np.flatnonzero(mask & np.isfinite(per_dim).all(axis=1))
        if len(rows):
            row = rows[-1]
            return (int((per_dim[row] > ACTIVE_DIM_KL).sum()), per_dim.shape[1],
                    int(history.epochs[row]), f"{split}_kl_dim_*",
                    f"KL ≤ {ACTIVE_DIM_KL:g} nats")
    n_latent = history.meta.n_latent
    for split in ("train", "val"):
        active = history.values(f"{split}_active_units")
        if active is None or not n_latent:
            continue
        rows = np.flatnonzero(mask & np.isfinite(active))
        if len(rows):
            row = rows[-1]
            return (int(active[row]), n_latent, int(history.epochs[row]),
                    f"{split}_active_units", "posterior-mean variance ≤ 0.01")
    return None


def partial_collapse_rule(history: History) -> list[Finding]:
    """How many latent dimensions carry information, at the last full-β epoch.

    A dimension is active when its KL exceeds ``ACTIVE_DIM_KL`` nats (columns
    ``train_kl_dim_*``), or else by ``train_active_units`` (posterior-mean variance,
    Burda et al. 2015). Warns when at least ``PARTIAL_COLLAPSE_DEAD_SHARE`` of the
    dimensions are inactive. Returns [] without per-dimension data, and when no
    dimension is active (that is posterior collapse, judged by :func:`collapse_rule`).
    """
    found = _active_dims(history, _collapse_mask(history))
    if found is None or found[0] == 0:
        return []
    n_active, n_dims, epoch, column, inactive_when = found
    n_dead = n_dims - n_active
    evidence: dict[str, float | int | str] = {
        "series": column,
        "epoch": epoch,
        "n_active": n_active,
        "n_latent": n_dims,
        "inactive_when": inactive_when,
    }
    if n_dead / n_dims < PARTIAL_COLLAPSE_DEAD_SHARE:
        return [Finding("partial_collapse", Severity.OK,
                        f"{n_active} of {n_dims} latent dimensions active", evidence)]
    return [Finding(
        "partial_collapse", Severity.WARN,
        f"Partial collapse: {n_active} of {n_dims} latent dimensions active "
        f"({n_dead} with {inactive_when})",
        evidence,
        f"If the data has about {n_active} independent factors this is expected: a smaller "
        f"latent space (--n-latent {n_active}) loses nothing. Otherwise give each dimension "
        f"free bits (--free-bits 0.1) or lower β ({lower_beta(max_beta(history))}).",
        epoch,
    )]
