"""Posterior collapse: the encoder ignores its input (reference doc, "Posterior Collapse").

Three shapes:

- **posterior collapse**: KL per dimension stays below
  :data:`~genevae.diagnosis.thresholds.COLLAPSE_KL_PER_DIM`, or the rate (KL summed
  over latent dimensions) below :data:`~genevae.diagnosis.thresholds.COLLAPSE_RATE`
  = log 2 nats per cell, for the last
  :data:`~genevae.diagnosis.thresholds.COLLAPSE_MIN_EPOCHS` full-β epochs (two for a
  latent never yet in use), and not back in the healthy band since. The rate bounds the information the latent
  holds about a cell (rate ≥ I(x; z)): below log 2 it holds less than one binary
  split of the cells, whatever the latent size;
- **late collapse**: the same end, after KL had reached the healthy band;
- **partial collapse**: the average looks fine but most latent dimensions carry
  no information (reference facts: 20 of 64 active in the healthy example run).
"""

from __future__ import annotations

import numpy as np

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import (
    FIX_LOSS_REDUCTION,
    fix_collapse,
    fmt,
    lower_beta,
    num,
    trailing_run,
)
from genevae.diagnosis.rules.kl import Information, collapsed_since, fmt_kl, information
from genevae.diagnosis.rules.schedule import beta_window
from genevae.diagnosis.thresholds import (
    ACTIVE_DIM_KL,
    COLLAPSE_KL_PER_DIM,
    COLLAPSE_MIN_EPOCHS,
    COLLAPSE_RATE,
    EFFECTIVE_BETA_WARN,
    LATE_COLLAPSE_MIN_PEAK,
    LATE_COLLAPSE_MIN_PEAK_RATE,
    PARTIAL_COLLAPSE_DEAD_SHARE,
)
from genevae.diagnosis.units import max_beta, reduction_multiplier
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


def _what(held: Information, row: int) -> str:
    """What is below the collapse level at ``row``, for a title."""
    if held.low_because_of_rate(row):
        return (f"KL summed over latent dimensions below log 2 = {COLLAPSE_RATE:.2f} nats per "
                "cell")
    if held.kl_per_dim is not None:
        return f"KL per dimension below {COLLAPSE_KL_PER_DIM:g}"
    return f"total KL below {COLLAPSE_KL_PER_DIM:g}"


def _at_end(held: Information) -> str:
    """KL at the last epoch on the scale(s) known, for a title."""
    parts = []
    if held.kl_per_dim is not None:
        parts.append(f"{fmt_kl(held.kl_per_dim[-1])} per dimension")
    if held.rate is not None:
        parts.append(f"{fmt_kl(held.rate[-1])} nats per cell in total")  # the rate
    return ", ".join(parts)


def collapse_rule(history: History) -> list[Finding]:
    """Posterior collapse or late collapse: the latent holds next to nothing at the end.

    An epoch is collapsed when KL per dimension is below ``COLLAPSE_KL_PER_DIM`` (the
    reference's "≈ 0") or the rate, KL summed over latent dimensions, is below
    ``COLLAPSE_RATE`` = log 2 nats per cell: rate ≥ I(x; z), so the latent then holds
    less than one binary split of the cells, whatever its size or convention
    (:func:`~genevae.diagnosis.rules.kl.information`, validation KL first). A collapse
    begins after ``COLLAPSE_MIN_EPOCHS`` such epochs (``NEVER_USED_MIN_EPOCHS`` for a
    latent never yet in use) and lasts until KL is back in the healthy band
    (:func:`~genevae.diagnosis.rules.kl.collapsed_since`). Late collapse when KL had
    first reached the healthy band (or a rate of ``LATE_COLLAPSE_MIN_PEAK_RATE``).
    Returns [] while KL has been ≈ 0 for too few epochs: too early to tell.
    """
    held = information(history, _collapse_mask(history))
    if held is None:
        return []
    n_low = trailing_run(held.low)
    start = collapsed_since(held)
    evidence: dict[str, float | int | str] = {"series": held.series}
    if held.kl_per_dim is not None:
        evidence.update(kl_per_dim_last=num(held.kl_per_dim[-1]), threshold=COLLAPSE_KL_PER_DIM)
    if held.rate is not None:
        evidence.update(rate_last=num(held.rate[-1]), rate_threshold=num(COLLAPSE_RATE),
                        rate_units="nats per cell, KL summed over latent dimensions")
    evidence.update(n_epochs_below=n_low, min_epochs=COLLAPSE_MIN_EPOCHS)
    if start is None:
        if n_low:
            return []
        return [Finding(codes.POSTERIOR_COLLAPSE, Severity.OK, "No posterior collapse", evidence)]
    since = int(held.epochs[start])
    n_since = len(held.low) - start
    evidence.update(since_epoch=since, n_epochs_collapsed=n_since)
    what = _what(held, min(start + COLLAPSE_MIN_EPOCHS, len(held.low)) - 1)
    stretch = f"{what} from epoch {since}"
    if n_low < n_since:
        stretch += f" and never back in the healthy band (at most {_highest(held, start)})"
    bound = ""
    if held.rate is not None:
        bound = (f"; rate ≥ I(x; z), so the latent holds at most {fmt_kl(held.rate[-1])} nats "
                 "about a cell")
        evidence["information_bound"] = f"I(x; z) ≤ {num(held.rate[-1])} nats"
    peak = _peak_before(held, start)
    if peak is not None:
        peak_at, peak_text = peak
        evidence["peak_epoch"] = int(held.epochs[peak_at])
        return [Finding(
            codes.LATE_COLLAPSE, Severity.FAIL,
            f"Late collapse: KL fell from {peak_text} (epoch {held.epochs[peak_at]}) to "
            f"{_at_end(held)}; {stretch}{bound}",
            evidence,
            f"The latent space was used until about epoch {since - 1}, then abandoned: keep "
            f"the checkpoint from before epoch {since}. {collapse_fix(history)}",
            since,
        )]
    return [Finding(
        codes.POSTERIOR_COLLAPSE, Severity.FAIL,
        f"Posterior collapse: {stretch}; at epoch {held.epochs[-1]} {_at_end(held)}{bound}",
        evidence, collapse_fix(history), since,
    )]


def _highest(held: Information, start: int) -> str:
    """The largest KL since ``start``, on the scale(s) known, for a title."""
    parts = []
    if held.kl_per_dim is not None:
        parts.append(f"{fmt_kl(np.nanmax(held.kl_per_dim[start:]))} per dimension")
    if held.rate is not None:
        parts.append(f"{fmt_kl(np.nanmax(held.rate[start:]))} nats per cell")
    return ", ".join(parts)


def _peak_before(held: Information, start: int) -> tuple[int, str] | None:
    """(row, text) of the KL peak before the collapse began, if it was healthy then."""
    before = slice(0, start)
    if held.kl_per_dim is not None and len(held.kl_per_dim[before]):
        row = int(np.nanargmax(held.kl_per_dim[before]))
        if held.kl_per_dim[row] >= LATE_COLLAPSE_MIN_PEAK:
            return row, f"{fmt(held.kl_per_dim[row])} per dimension"
    if held.rate is not None and len(held.rate[before]):
        row = int(np.nanargmax(held.rate[before]))
        if held.rate[row] >= LATE_COLLAPSE_MIN_PEAK_RATE:
            return row, f"{fmt(held.rate[row])} nats per cell"
    return None


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
        return [Finding(codes.PARTIAL_COLLAPSE, Severity.OK,
                        f"{n_active} of {n_dims} latent dimensions active", evidence)]
    return [Finding(
        codes.PARTIAL_COLLAPSE, Severity.WARN,
        f"Partial collapse: {n_active} of {n_dims} latent dimensions active "
        f"({n_dead} with {inactive_when})",
        evidence,
        f"If the data has about {n_active} independent factors this is expected: a smaller "
        f"latent space (--n-latent {n_active}) loses nothing. Otherwise give each dimension "
        f"free bits (--free-bits 0.1) or lower β ({lower_beta(max_beta(history))}).",
        epoch,
    )]
