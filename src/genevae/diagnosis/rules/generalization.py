"""Train versus validation: train ≈ val, validation below training, overfitting.

Reference doc, "Healthy Training Signs" (Train ≈ Val — no significant overfitting)
and "Summary" (red flag: diverging train/val). Validation persistently *below*
training is common and harmless: the training loss is usually measured in
training mode (dropout on, or averaged over the epoch while the model was still
improving) and the validation loss in eval mode (reference facts: dropout made
validation sit below training throughout the example run).

Both rules compare ``train_loss`` and ``val_loss`` at full-β epochs.
"""

from __future__ import annotations

import numpy as np

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import fmt, num, trailing_run
from genevae.diagnosis.rules.schedule import beta_window
from genevae.diagnosis.thresholds import (
    OVERFIT_FAIL_RELATIVE,
    OVERFIT_FAIL_RISE,
    OVERFIT_MIN_EPOCHS,
    OVERFIT_WARN_RISE,
    TRAIN_VAL_GAP_WARN,
    VAL_BELOW_TRAIN_SHARE,
)
from genevae.history.history import History

__all__ = ["train_val_rule", "overfitting_rule"]

_REGULARISE = (
    "Regularise: more dropout (--dropout 0.2), more weight decay (--weight-decay 0.05) or a "
    "smaller network (--n-hidden 64)."
)


def _paired(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(epochs, train_loss, val_loss) at full-β epochs where both are finite."""
    train, val = history.values("train_loss"), history.values("val_loss")
    if train is None or val is None:
        return None
    keep = beta_window(history).judged & np.isfinite(train) & np.isfinite(val)
    if not keep.any():
        return None
    return history.epochs[keep], train[keep], val[keep]


def train_val_rule(history: History) -> list[Finding]:
    """Gap between validation and training loss at the last full-β epoch.

    The gap is ``(val - train) / scale`` with ``scale = max(|train|, train gain)`` so
    a loss near zero does not blow it up. Above ``TRAIN_VAL_GAP_WARN``: warn.
    Validation below training in at least ``VAL_BELOW_TRAIN_SHARE`` of the epochs:
    an ok finding that explains why.
    """
    paired = _paired(history)
    if paired is None:
        return []
    epochs, train, val = paired
    scale = max(abs(train[-1]), train[0] - train.min())
    if scale == 0:
        return []
    gaps = (val - train) / scale
    n_below = int((val < train).sum())
    numbers = f"{fmt(val[-1])} vs {fmt(train[-1])}"
    evidence: dict[str, float | int | str] = {
        "series": "train_loss, val_loss",
        "epoch": int(epochs[-1]),
        "train_loss": num(train[-1]),
        "val_loss": num(val[-1]),
        "gap_share": num(gaps[-1]),
        "n_epochs_val_below": n_below,
        "n_epochs": len(epochs),
    }
    if n_below >= VAL_BELOW_TRAIN_SHARE * len(epochs) and gaps[-1] < 0:
        evidence["explanation"] = (
            "The training loss is measured in training mode (dropout on, or averaged over the "
            "epoch while the model improved); validation is evaluated in eval mode."
        )
        return [Finding(
            codes.VAL_BELOW_TRAIN, Severity.INFO,
            f"Validation below training in {n_below} of {len(epochs)} epochs ({numbers} at the "
            "end) — dropout is active only in training; not a problem",
            evidence,
        )]
    if gaps[-1] > TRAIN_VAL_GAP_WARN:
        since = int(epochs[-trailing_run(gaps > TRAIN_VAL_GAP_WARN)])
        return [Finding(
            codes.TRAIN_VAL_GAP, Severity.WARN,
            f"Validation {gaps[-1]:.0%} above training ({numbers})",
            evidence,
            f"{_REGULARISE} Early stopping keeps the best validation epoch "
            "(--early-stopping-patience 10).",
            since,
        )]
    return [Finding(codes.TRAIN_VAL_GAP, Severity.OK, f"Train ≈ val ({numbers})", evidence)]


def _gap_parts(history: History, epoch_row: int) -> dict[str, float]:
    """Split the final val − train gap into reconstruction and β·KL parts, where logged."""
    parts: dict[str, float] = {}
    values = {c: history.values(c) for c in ("train_recon", "val_recon", "train_kl", "val_kl")}
    if values["train_recon"] is not None and values["val_recon"] is not None:
        parts["gap_recon"] = num(values["val_recon"][epoch_row] - values["train_recon"][epoch_row])
    if values["train_kl"] is not None and values["val_kl"] is not None:
        beta = history.values("kl_weight")
        weight = 1.0 if beta is None or np.isnan(beta[epoch_row]) else float(beta[epoch_row])
        parts["gap_kl_weighted"] = num(
            weight * (values["val_kl"][epoch_row] - values["train_kl"][epoch_row])
        )
    return parts


def overfitting_rule(history: History) -> list[Finding]:
    """Overfitting: validation loss passed its minimum and rose while training kept falling.

    The rise is measured from the best validation epoch to the last, as a share of
    the validation gain (first value minus the minimum; the minimum's magnitude when
    validation never improved). It counts once ``OVERFIT_MIN_EPOCHS`` epochs have
    passed since the best epoch: warn from ``OVERFIT_WARN_RISE`` (a rise this small can
    be noise), and fail, the reference document's red flag "diverging train/val", from
    ``OVERFIT_FAIL_RISE`` or a final validation ``OVERFIT_FAIL_RELATIVE`` of its
    positive best above that best. The final gap is split into its reconstruction and β·KL
    parts where both splits log them.
    """
    paired = _paired(history)
    if paired is None or len(paired[0]) < OVERFIT_MIN_EPOCHS + 1:
        return []
    epochs, train, val = paired
    best = int(np.argmin(val))
    scale = val[0] - val[best] or abs(val[best])
    if scale == 0:
        return []
    rise = (val[-1] - val[best]) / scale
    n_after = len(val) - 1 - best
    best_epoch = int(epochs[best])
    evidence: dict[str, float | int | str] = {
        "series": "train_loss, val_loss",
        "best_epoch": best_epoch,
        "val_best": num(val[best]),
        "val_last": num(val[-1]),
        "rise_share": num(rise),
        "train_at_best": num(train[best]),
        "train_last": num(train[-1]),
        "n_epochs_after_best": n_after,
    }
    overfitting = (
        n_after >= OVERFIT_MIN_EPOCHS and rise >= OVERFIT_WARN_RISE and train[-1] < train[best]
    )
    if not overfitting:
        where = ("still at its best" if n_after == 0
                 else f"{max(rise, 0.0):.0%} of its gain above its best")
        return [Finding(
            codes.OVERFITTING, Severity.OK,
            f"No overfitting (validation best at epoch {best_epoch}; {where} at the end)",
            evidence,
        )]
    last_row = int(np.flatnonzero(history.epochs == epochs[-1])[0])
    parts = _gap_parts(history, last_row)
    evidence.update(parts)
    split = ""
    if parts:
        split = "; final gap: " + ", ".join(
            f"{name} {fmt(parts[key])}" for key, name in
            (("gap_recon", "reconstruction"), ("gap_kl_weighted", "β·KL")) if key in parts
        )
    relative = (val[-1] - val[best]) / val[best] if val[best] > 0 else 0.0
    evidence["rise_relative"] = num(relative)
    failing = rise >= OVERFIT_FAIL_RISE or relative >= OVERFIT_FAIL_RELATIVE
    return [Finding(
        codes.OVERFITTING, Severity.FAIL if failing else Severity.WARN,
        f"Overfitting: validation best at epoch {best_epoch} ({fmt(val[best])}), then rose "
        f"{rise:.0%} of its gain ({fmt(val[-1])}) while training fell "
        f"({fmt(train[best])} → {fmt(train[-1])}){split}",
        evidence,
        f"Keep the model of epoch {best_epoch} (best.pt) and stop there (--epochs {best_epoch}, "
        f"or --early-stopping-patience 5). {_REGULARISE}",
        int(epochs[best + 1]),
    )]
