"""Total loss decreasing (reference doc, "Healthy Training Signs"), and whether it
has levelled off by the last epoch.

Both read the total loss at full-β epochs only: the total loss ``recon + β · kl``
rises with β during a warm-up without anything being wrong. The trend reads the
training loss as the reference document does; convergence reads the validation
loss first, since that is what training longer would have to improve.
"""

from __future__ import annotations

import math

import numpy as np

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import (
    FIX_LEARNING_RATE,
    Series,
    fix_train_longer,
    fmt,
    num,
    series,
)
from genevae.diagnosis.rules.schedule import beta_window
from genevae.diagnosis.thresholds import (
    LOSS_MIN_IMPROVEMENT,
    NOT_CONVERGED_TAIL_GAIN,
    NOT_CONVERGED_TAIL_SHARE,
    VAL_UNSETTLED_SWING,
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
        return [Finding(codes.LOSS_TREND, Severity.OK, f"Total loss decreasing {span}", evidence)]
    return [Finding(
        codes.LOSS_TREND, Severity.WARN, f"Total loss not decreasing {span}", evidence,
        f"{FIX_LEARNING_RATE} If the loss does not move at all, try a larger one (--lr 3e-3).",
        int(loss.epochs[-1]),
    )]


def _convergence_series(history: History) -> Series | None:
    """The loss whose last fifth tells whether the run levelled off.

    The total loss at full-β epochs; after a finished warm-up at every epoch, since
    during it the total loss recon + β·KL is lower than at full β by at most (1 − β)·KL,
    which can only understate the gain, so no run is called converged because of those
    epochs. While a warm-up is still rising, the reconstruction at every epoch: a rising
    β moves the total loss with it but can only push the reconstruction up, so a
    reconstruction still falling is a model still learning. Cyclical schedules keep
    their full-β epochs (the loss rises and falls with β).
    """
    window = beta_window(history)
    if window.kind == "warmup" and window.still_rising:
        return series(history, ("val_recon", "train_recon"))
    if window.kind == "warmup":
        return series(history, ("val_loss", "train_loss"))
    return series(history, ("val_loss", "train_loss"), window.judged)


def not_converged_rule(history: History) -> list[Finding]:
    """Still improving at the end: the share of the run's gain that its last fifth made.

    Series: ``val_loss`` (the loss that training longer would improve), else
    ``train_loss``, at full-β epochs, after a finished warm-up at every epoch, and the
    reconstruction while a warm-up is still rising (:func:`_convergence_series`). The tail is the last
    ``max(2, ⌈NOT_CONVERGED_TAIL_SHARE · (n − 1)⌉)`` epoch-to-epoch steps (all of them
    in a shorter run); its improvement is how far the best loss so far fell over it,
    so a spike of a noisy validation loss (a few held-out cells) neither hides nor
    fakes progress, and a smooth curve is read as it is. The gain is the drop from the
    first judged epoch to the lowest loss. Not converged, a failing finding, when the
    tail made more than ``NOT_CONVERGED_TAIL_GAIN`` of the gain per fifth of the run,
    however few epochs the run has: a short run's tail of 2 steps is longer than a
    fifth (2 of 5 steps in a 6-epoch run) and the limit grows with it (0.10 there), so
    a run is judged by the pace of its end, not by how its epochs divide. A run of one
    judged epoch cannot show that it levelled off. Returns [] when the loss never fell
    (``loss_trend`` says so).

    The best loss so far cannot rise, so a validation loss that swings up and down
    looks level however unsettled it is. Not converged, too, when the validation loss
    swings over the tail by more than ``VAL_UNSETTLED_SWING`` of the training loss's
    gain over the same epochs (:func:`_unsettled_validation`): the model's fit to
    held-out cells is still moving by a large part of all that training achieved
    (scvi-tools on 85 bulk samples, validation losses of 10^4-10^7 while the
    training loss fell smoothly).
    """
    loss = _convergence_series(history)
    if loss is None:
        return []
    if len(loss) == 1:
        return [Finding(
            codes.NOT_CONVERGED, Severity.FAIL,
            f"Not converged: one epoch ({loss.column} {fmt(loss.first)}) cannot show that the "
            "loss levelled off",
            {"series": loss.column, "n_epochs": 1},
            fix_train_longer(max(len(history), 5)), int(loss.epochs[0]),
        )]
    if loss.gain <= 0:
        return []
    n_steps = min(len(loss) - 1, max(2, math.ceil(NOT_CONVERGED_TAIL_SHARE * (len(loss) - 1))))
    best = np.minimum.accumulate(loss.values)  # the best loss so far, epoch by epoch
    tail_epochs, tail = loss.epochs[-n_steps - 1:], best[-n_steps - 1:]
    tail_gain = float(tail[0] - tail[-1])
    share = tail_gain / loss.gain
    fifths = n_steps / (NOT_CONVERGED_TAIL_SHARE * (len(loss) - 1))  # the tail in fifths
    limit = NOT_CONVERGED_TAIL_GAIN * max(1.0, fifths)
    evidence: dict[str, float | int | str] = {
        "series": loss.column,
        "best_at_tail_start": num(tail[0]),
        "best_at_end": num(tail[-1]),
        "tail_gain": num(tail_gain),
        "gain": num(loss.gain),
        "tail_share": num(share),
        "max_tail_share": num(limit),
        "tail_epochs": f"{tail_epochs[0]}–{tail_epochs[-1]}",
    }
    span = f"epochs {tail_epochs[0]}–{tail_epochs[-1]}"
    if share > limit:
        return [Finding(
            codes.NOT_CONVERGED, Severity.FAIL,
            f"Not converged: {loss.column} still falling at the end; {span} made {share:.0%} of "
            f"the run's gain (best {fmt(tail[0])} → {fmt(tail[-1])})",
            evidence, fix_train_longer(len(history)), int(loss.epochs[-1]),
        )]
    unsettled = _unsettled_validation(history, loss, n_steps)
    if unsettled is not None:
        swing, train = unsettled
        swing_share = swing / train.gain
        evidence.update({
            "tail_swing": num(swing),
            "train_series": train.column,
            "train_gain": num(train.gain),
            "swing_share": num(swing_share),
            "max_swing_share": VAL_UNSETTLED_SWING,
        })
        if swing_share > VAL_UNSETTLED_SWING:
            return [Finding(
                codes.NOT_CONVERGED, Severity.FAIL,
                f"Not converged: {loss.column} still swings by {fmt(swing)} over {span}, "
                f"{swing_share:.0%} of what {train.column} gained in the run "
                f"({fmt(train.gain)}); the fit to held-out cells has not settled",
                evidence,
                f"{fix_train_longer(len(history))} If the validation loss keeps swinging: "
                f"{FIX_LEARNING_RATE}",
                int(loss.epochs[-1]),
            )]
    return [Finding(
        codes.NOT_CONVERGED, Severity.OK,
        f"Loss levelled off ({span} made {max(share, 0.0):.1%} of the run's gain)",
        evidence,
    )]


def _unsettled_validation(history: History, loss: Series,
                          n_steps: int) -> tuple[float, Series] | None:
    """How far a validation ``loss`` swings over its last ``n_steps`` steps (max − min
    of its values there), with the training series over the same epochs whose gain it
    is compared with; ``None`` when ``loss`` is not a validation loss, the history has
    no matching training column, or the training loss never fell."""
    if not loss.column.startswith("val_"):
        return None
    train = series(history, ("train_" + loss.column.removeprefix("val_"),),
                   np.isin(history.epochs, loss.epochs))
    if train is None or len(train) < 2 or train.gain <= 0:
        return None
    tail = loss.values[-n_steps - 1:]
    return float(tail.max() - tail.min()), train
