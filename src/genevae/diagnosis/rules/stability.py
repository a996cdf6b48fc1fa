"""Optimisation stability: divergence (NaN, inf, explosion) and oscillation.

A too-high learning rate shows first as a loss that jumps up between epochs, then
as a loss that explodes or becomes NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import FIX_LEARNING_RATE, fmt, num, series, trailing_run
from genevae.diagnosis.rules.schedule import beta_window
from genevae.diagnosis.thresholds import (
    EXPLOSION_FACTOR,
    UNSTABLE_MIN_RISES,
    UNSTABLE_RISE,
)
from genevae.history.history import SPLITS, History

__all__ = ["diverged_rule", "unstable_rule"]

_LOSS = ("train_loss", "val_loss")
_CHECKED = tuple(f"{s}_{n}" for s in SPLITS for n in ("loss", "recon", "kl")) + (
    "train_running_loss",
)


def _raw(history: History, column: str) -> np.ndarray | None:
    """A column as floats, NaN included (``History.values`` hides an all-NaN column)."""
    if column not in history.frame:
        return None
    return pd.to_numeric(history.frame[column], errors="coerce").to_numpy(dtype=float)


def _first_divergence(history: History) -> tuple[int, str, str] | None:
    """(row, column, what) of the earliest sign of divergence, or ``None``."""
    events: list[tuple[int, str, str]] = []
    for column in _CHECKED:
        values = _raw(history, column)
        if values is not None and np.isinf(values).any():
            events.append((int(np.argmax(np.isinf(values))), column, "inf"))
    losses = [(c, values) for c in _LOSS if (values := _raw(history, c)) is not None]
    if losses:
        # Missing training loss at the end means the run stopped on a non-finite loss
        # (genevae writes such a row, every loss NaN); a gap in the middle is only a
        # missing value, and so is a last epoch whose validation loss is finite (a
        # per-step log grouped into epochs can end on a validation line). Only the first
        # loss logged is read so: a validation loss missing at the end is usually one
        # logged every few epochs.
        column, values = losses[0]
        stopped = np.isnan(values)
        for _, other in losses[1:]:
            stopped &= ~np.isfinite(other)
        if n_nan := trailing_run(stopped):
            events.append((len(values) - n_nan, column, "NaN"))
    for column, values in losses:
        finite = np.where(np.isfinite(values), values, np.nan)
        largest = np.fmax.accumulate(np.abs(finite))
        lowest = np.fmin.accumulate(finite)
        rise = finite[1:] - lowest[:-1]
        exploded = np.flatnonzero(rise > EXPLOSION_FACTOR * largest[:-1])
        if len(exploded):
            row = int(exploded[0]) + 1
            events.append((row, column, f"exploded from {fmt(lowest[row - 1])} to "
                                        f"{fmt(values[row])}"))
    return min(events, default=None)


def diverged_rule(history: History) -> list[Finding]:
    """Diverged: a loss became NaN or infinite, or exploded.

    Inf in any loss, reconstruction or KL column; NaN in the training loss (else the
    validation loss) from some epoch to the end; or a rise of the training or the
    validation loss above its running minimum of more than ``EXPLOSION_FACTOR`` times
    the largest |loss| seen before. The validation loss counts on its own: with a high
    learning rate a run's training loss can recover while its held-out loss explodes
    (scvi-tools at lr 0.3: validation 7e19 at epoch 6, still 5x the training loss at the
    end; its held-out loss measured worse than the untrained model's).
    """
    checked = [column for column in _CHECKED if column in history.frame]
    if not len(history) or not checked:
        return []
    found = _first_divergence(history)
    if found is None:
        return [Finding(codes.DIVERGED, Severity.OK, "No divergence (losses finite)",
                        {"series": ", ".join(checked)})]
    row, column, what = found
    epoch = int(history.epochs[row])
    evidence: dict[str, float | int | str] = {"series": column, "epoch": epoch, "value": what}
    last_good = f" The model of epoch {epoch - 1} is the last good one." if row else ""
    return [Finding(
        codes.DIVERGED, Severity.FAIL,
        f"Training diverged at epoch {epoch} ({column} {what})",
        evidence,
        f"{FIX_LEARNING_RATE} Clip gradients harder (--grad-clip 1).{last_good}",
        epoch,
    )]


def unstable_rule(history: History) -> list[Finding]:
    """Unstable: the loss oscillates, jumping up and back down between epochs.

    A jump is a rise larger than ``UNSTABLE_RISE`` of the run's gain (first full-β
    loss minus the lowest) that the next epoch at least partly undoes (the loss
    falls again): a spike. Steady rises are not oscillation; the loss-trend,
    overfitting and divergence rules judge those. Warn from ``UNSTABLE_MIN_RISES``
    jumps; never fail: spikes in a loss logged per epoch are a reason to lower the
    learning rate, not a failed run (the held-out loss of such runs was smooth in
    ``benchmarks/diagnosis``), and a loss that does not come back is ``diverged``.
    Only consecutive epochs both at full β
    count, so a cyclical schedule's β ramps are not mistaken for oscillation.
    Series: ``train_loss``, else ``val_loss``.
    """
    judged = beta_window(history).judged
    loss = series(history, _LOSS, judged)
    if loss is None or len(loss) < 3 or loss.gain <= 0:
        return []
    consecutive = np.diff(loss.epochs) == 1
    rises = np.diff(loss.values) / loss.gain
    undone = np.append((rises[1:] < 0) & consecutive[1:], False)
    jumps = np.flatnonzero(consecutive & undone & (rises > UNSTABLE_RISE))
    largest = float(np.max(np.where(consecutive, rises, -np.inf)))
    evidence: dict[str, float | int | str] = {
        "series": loss.column,
        "n_jumps": len(jumps),
        "largest_rise_share": num(max(largest, 0.0)),
        "jump_threshold_share": UNSTABLE_RISE,
        "gain": num(loss.gain),
    }
    if len(jumps) < UNSTABLE_MIN_RISES:
        return [Finding(
            codes.UNSTABLE, Severity.OK,
            f"Loss stable (largest rise between epochs: {max(largest, 0.0):.1%} of its total gain)",
            evidence,
        )]
    jump_epochs = [int(loss.epochs[i + 1]) for i in jumps]
    evidence["jump_epochs"] = ", ".join(str(e) for e in jump_epochs)
    return [Finding(
        codes.UNSTABLE, Severity.WARN,
        f"Unstable: loss spiked {len(jumps)} times by more than {UNSTABLE_RISE:.0%} of its "
        f"total gain (largest {largest:.0%}, first at epoch {jump_epochs[0]})",
        evidence,
        f"{FIX_LEARNING_RATE} Larger batches (--batch-size 256) also smooth the updates.",
        jump_epochs[0],
    )]
