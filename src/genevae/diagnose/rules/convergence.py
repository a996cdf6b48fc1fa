"""Total loss decreasing (reference doc, "Healthy Training Signs"), and whether it
has levelled off by the last epoch.

Both read the training loss (validation loss when training loss is not logged)
at full-β epochs only: the total loss ``recon + β · kl`` rises with β during a
warm-up without anything being wrong.
"""

from __future__ import annotations

import numpy as np

from genevae.diagnose.findings import Finding, Severity
from genevae.diagnose.rules.common import FIX_LEARNING_RATE, fix_train_longer, fmt, num, series
from genevae.diagnose.rules.schedule import beta_window
from genevae.diagnose.thresholds import (
    LOSS_MIN_IMPROVEMENT,
    NOT_CONVERGED_RATE,
    NOT_CONVERGED_WINDOW,
)
from genevae.history.history import History

__all__ = ["loss_trend_rule", "not_converged_rule"]

_LOSS = ("train_loss", "val_loss")


def loss_trend_rule(history: History) -> list[Finding]:
    """Total loss from the first to the last full-β epoch.

    Decreasing when it fell by at least ``LOSS_MIN_IMPROVEMENT`` of its first
    magnitude. Series: ``train_loss``, else ``val_loss``.
    """
    loss = series(history, _LOSS, beta_window(history).judged)
    if loss is None or len(loss) < 2:
        return []
    first, last = loss.first, loss.last
    improvement = (first - last) / abs(first) if first else float(last < first)
    span = f"({fmt(first)} → {fmt(last)})"
    evidence: dict[str, float | int | str] = {
        "series": loss.column,
        "loss_first": num(first),
        "loss_last": num(last),
        "epoch_first": int(loss.epochs[0]),
        "epoch_last": int(loss.epochs[-1]),
        "improvement": num(improvement),
    }
    if improvement >= LOSS_MIN_IMPROVEMENT:
        return [Finding("loss_trend", Severity.OK, f"Total loss decreasing {span}", evidence)]
    return [Finding(
        "loss_trend", Severity.WARN, f"Total loss not decreasing {span}", evidence,
        f"{FIX_LEARNING_RATE} If the loss does not move at all, try a larger one (--lr 3e-3).",
        int(loss.epochs[-1]),
    )]


def not_converged_rule(history: History) -> list[Finding]:
    """Still improving at the end: the slope over the last ``NOT_CONVERGED_WINDOW``
    full-β epochs, as a share of the run's gain per epoch.

    The slope is a least-squares line through the last window + 1 values; the gain
    is the drop from the first full-β epoch to the lowest loss. Not converged when
    the loss still falls by more than ``NOT_CONVERGED_RATE`` of the gain per epoch.
    Series: ``train_loss``, else ``val_loss``. Returns [] for runs shorter than the
    window or without any gain.
    """
    loss = series(history, _LOSS, beta_window(history).judged)
    if loss is None or len(loss) <= NOT_CONVERGED_WINDOW or loss.gain <= 0:
        return []
    tail_epochs = loss.epochs[-NOT_CONVERGED_WINDOW - 1:]
    tail = loss.values[-NOT_CONVERGED_WINDOW - 1:]
    slope = float(np.polyfit(tail_epochs, tail, 1)[0])
    rate = -slope / loss.gain
    evidence: dict[str, float | int | str] = {
        "series": loss.column,
        "slope_per_epoch": num(slope),
        "gain": num(loss.gain),
        "rate": num(rate),
        "max_rate": NOT_CONVERGED_RATE,
        "window_epochs": f"{tail_epochs[0]}–{tail_epochs[-1]}",
    }
    if rate > NOT_CONVERGED_RATE:
        return [Finding(
            "not_converged", Severity.WARN,
            f"Not converged: loss still falling by {rate:.1%} of its total gain per epoch over "
            f"the last {NOT_CONVERGED_WINDOW} epochs ({fmt(tail[0])} → {fmt(tail[-1])})",
            evidence, fix_train_longer(len(history)), int(loss.epochs[-1]),
        )]
    return [Finding(
        "not_converged", Severity.OK,
        f"Loss levelled off (changing by {abs(rate):.1%} of its total gain per epoch over the "
        f"last {NOT_CONVERGED_WINDOW} epochs)",
        evidence,
    )]
