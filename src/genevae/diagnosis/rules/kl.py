"""KL trend and KL range: is the latent space used, and by how much.

Both rules read the training KL (as the reference document does; validation KL
when training KL is not logged), converted per latent dimension by
:func:`~genevae.diagnosis.units.kl_scale`, at the epochs where β is at full strength
(:func:`~genevae.diagnosis.rules.schedule.beta_window`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import Series, fix_collapse, fmt, num, series, trailing_run
from genevae.diagnosis.rules.schedule import beta_window
from genevae.diagnosis.thresholds import (
    COLLAPSE_KL_PER_DIM,
    COLLAPSE_MIN_EPOCHS,
    COLLAPSE_RATE,
    HEALTHY_KL_PER_DIM,
    HIGH_KL_PER_DIM,
    KL_TREND_TOLERANCE,
    LATE_COLLAPSE_MIN_PEAK,
    NEVER_USED_MIN_EPOCHS,
)
from genevae.diagnosis.units import KLScale, kl_scale, max_beta, rate_per_cell
from genevae.history.history import History

__all__ = [
    "kl_series",
    "fmt_kl",
    "Information",
    "information",
    "collapsed_since",
    "kl_trend_rule",
    "kl_range_rule",
    "kl_logged_rule",
]

_LOW, _HIGH = HEALTHY_KL_PER_DIM


def kl_series(history: History, mask: np.ndarray | None) -> tuple[Series, KLScale] | None:
    """Training KL (else validation KL) on the band scale, finite epochs within ``mask``."""
    for split in ("train", "val"):
        scale = kl_scale(history, split)
        if scale is not None:
            kl = series(history, (scale.series,), mask, scale.values)
            return None if kl is None else (kl, scale)
    return None


@dataclass(frozen=True)
class Information:
    """What the KL says the latent holds, at the judged epochs with a KL value.

    Attributes
    ----------
    epochs
        Shape (n,).
    kl_per_dim
        Nats per latent dimension, shape (n,), where the reference bands apply; else None.
    rate
        KL summed over latent dimensions, nats per cell, shape (n,), where known; else None.
    low
        Shape (n,): the latent holds next to nothing, KL per dimension below
        ``COLLAPSE_KL_PER_DIM`` (the reference's "≈ 0") or rate below ``COLLAPSE_RATE``
        (less than one binary split of the cells, rate ≥ I(x; z)).
    series
        The column(s) read, for evidence.
    """

    epochs: np.ndarray
    kl_per_dim: np.ndarray | None
    rate: np.ndarray | None
    low: np.ndarray
    series: str

    def low_because_of_rate(self, row: int) -> bool:
        """Whether the rate, not the per-dimension band, puts epoch ``row`` below."""
        return self.rate is not None and bool(self.rate[row] < COLLAPSE_RATE) and not (
            self.kl_per_dim is not None and self.kl_per_dim[row] < COLLAPSE_KL_PER_DIM
        )


def _recovered(held: Information) -> np.ndarray:
    """Shape (n,): KL back where the latent is in use, ending a collapse: KL per
    dimension in the healthy band (``LATE_COLLAPSE_MIN_PEAK``, where the bands apply)
    and a rate of at least one bit (``COLLAPSE_RATE``, where the rate is known)."""
    back = np.ones(len(held.low), dtype=bool)
    if held.kl_per_dim is not None:
        back &= held.kl_per_dim >= LATE_COLLAPSE_MIN_PEAK
    if held.rate is not None:
        back &= held.rate >= COLLAPSE_RATE
    return back


def collapsed_since(held: Information) -> int | None:
    """Row at which the collapse still in force at the last epoch began, or None.

    A collapse begins once KL has been ≈ 0 (``held.low``) for ``COLLAPSE_MIN_EPOCHS``
    epochs in a row, the wait that keeps a passing dip of a latent in use from being
    called collapse; a latent never yet in use (:func:`_recovered` at no epoch so far)
    has no dip to wait out, and two epochs at ≈ 0 are enough. The collapse lasts until
    KL is back where the latent is in use, not merely above ≈ 0: a latent that crawls
    from 0.003 to 0.03 nats per dimension has not come back. The same function judges
    every epoch of a run in progress and the finished run, so the live warning and the
    final verdict agree.
    """
    back = _recovered(held)
    start: int | None = None
    n_low = 0
    ever_used = False
    for row, low in enumerate(held.low):
        n_low = n_low + 1 if low else 0
        if back[row]:
            ever_used, start = True, None
        needed = COLLAPSE_MIN_EPOCHS if ever_used else NEVER_USED_MIN_EPOCHS
        if start is None and n_low >= needed:
            start = row - n_low + 1
    return start


def information(history: History, mask: np.ndarray) -> Information | None:
    """Validation KL (else training KL) per dimension and as a rate, within ``mask``.

    Validation first: it is measured in eval mode on cells the model did not train on,
    so it is the information the encoder gives a new cell. Training KL is often logged
    in training mode, where dropout and batch statistics widen the spread of the
    posterior means and inflate KL (scvi-tools: a training KL of 1.3 nats beside a
    validation KL of 0.3 and a measured held-out rate of 0.3, ``benchmarks/diagnosis``).
    """
    for split in ("val", "train"):
        scale = kl_scale(history, split)
        if scale is None:
            continue
        per_dim = scale.values if scale.bands_apply else None
        found = rate_per_cell(history, split)
        rate = None if found is None else found[0]
        finite = np.zeros(len(history), dtype=bool)
        low = np.zeros(len(history), dtype=bool)
        for values, level in ((per_dim, COLLAPSE_KL_PER_DIM), (rate, COLLAPSE_RATE)):
            if values is not None:
                finite |= np.isfinite(values)
                low |= np.isfinite(values) & (values < level)
        keep = finite & mask
        if not keep.any():
            return None
        columns = scale.series if found is None or found[1] == scale.series else (
            f"{scale.series}; rate {found[1]}")
        return Information(
            history.epochs[keep],
            None if per_dim is None else per_dim[keep],
            None if rate is None else rate[keep],
            low[keep], columns,
        )
    return None


def fmt_kl(value: float) -> str:
    """KL for a title; four decimals below the collapse level so ≈ 0 is not shown as 0.00."""
    return fmt(value, 4 if abs(value) < COLLAPSE_KL_PER_DIM else 2)


def kl_trend_rule(history: History) -> list[Finding]:
    """KL increases then stabilises (reference doc, "Healthy Training Signs").

    Compares KL at the first and last full-β epochs. Series: ``train_kl``.
    """
    found = kl_series(history, beta_window(history).judged)
    if found is None or len(found[0]) < 2:
        return []
    kl, scale = found
    first, last = kl.first, kl.last
    span = f"({fmt_kl(first)} → {fmt_kl(last)}{'' if scale.bands_apply else ' in total'})"
    evidence: dict[str, float | int | str] = {
        "series": kl.column,
        "kl_first": num(first),
        "kl_last": num(last),
        "epoch_first": int(kl.epochs[0]),
        "epoch_last": int(kl.epochs[-1]),
        "per_dimension": str(scale.bands_apply).lower(),
    }
    held = information(history, beta_window(history).judged)
    collapsed = held is not None and (held.low[-1] or collapsed_since(held) is not None)
    if last < COLLAPSE_KL_PER_DIM or collapsed:
        where = "stays near 0" if held is not None and held.low.all() else (
            "near 0 at the end" if held is None or held.low[-1]
            else "never back in the healthy band after falling to ≈ 0")
        if held is not None and held.low_because_of_rate(len(held.low) - 1):
            evidence["rate_last"] = num(held.rate[-1])
            evidence["rate_threshold"] = num(COLLAPSE_RATE)
            where += f" (rate {fmt_kl(held.rate[-1])} < log 2 nats per cell)"
        return [Finding(
            codes.KL_TREND, Severity.WARN, f"KL {where} {span} — latent space not used",
            evidence, fix_collapse(max_beta(history)), int(kl.epochs[-1]),
        )]
    if last > first * (1 + KL_TREND_TOLERANCE):
        return [Finding(
            codes.KL_TREND, Severity.OK, f"KL increasing {span} — latent space is being used",
            evidence,
        )]
    if last >= first * (1 - KL_TREND_TOLERANCE):
        return [Finding(
            codes.KL_TREND, Severity.OK, f"KL stable {span} — latent space is being used",
            evidence,
        )]
    if scale.bands_apply and last < _LOW:
        return [Finding(
            codes.KL_TREND, Severity.WARN, f"KL decreasing {span} — latent space being abandoned",
            evidence, fix_collapse(max_beta(history)), int(kl.epochs[-1]),
        )]
    return [Finding(
        codes.KL_TREND, Severity.OK,
        f"KL decreasing {span} — settling towards the prior, latent space still used", evidence,
    )]


def kl_range_rule(history: History) -> list[Finding]:
    """KL per dimension at the last full-β epoch against the reference bands.

    Healthy 0.1–1.0, far from the prior above 2.0 (reference doc, "Interpreting KL
    Values"), a red flag that fails; below 0.1 warns ("barely used"; ≈ 0 is collapse,
    judged by the collapse rule); 1.0–2.0 is not named there and passes. Returns [] when the bands
    cannot be applied (summed KL, unknown ``n_latent``). Series: ``train_kl``.
    """
    found = kl_series(history, beta_window(history).judged)
    if found is None or not found[1].bands_apply:
        return []
    kl, _ = found
    value = kl.last
    evidence: dict[str, float | int | str] = {
        "series": kl.column,
        "kl_per_dim": num(value),
        "epoch": int(kl.epochs[-1]),
        "healthy_low": _LOW,
        "healthy_high": _HIGH,
        "high": HIGH_KL_PER_DIM,
    }
    if value < _LOW:
        since = int(kl.epochs[-trailing_run(kl.values < _LOW)])
        return [Finding(
            codes.KL_RANGE, Severity.WARN,
            f"KL below the healthy range ({fmt_kl(value)} < {_LOW:.1f}) — latent space barely used",
            evidence, fix_collapse(max_beta(history)), since,
        )]
    if value <= _HIGH:
        return [Finding(codes.KL_RANGE, Severity.OK,
                        f"KL in healthy range ({_LOW:.1f}–{_HIGH:.1f})", evidence)]
    if value <= HIGH_KL_PER_DIM:
        return [Finding(
            codes.KL_RANGE, Severity.OK,
            f"KL moderately high ({fmt(value)}, between {_HIGH:.1f} and {HIGH_KL_PER_DIM:.1f})",
            evidence,
        )]
    since = int(kl.epochs[-trailing_run(kl.values > HIGH_KL_PER_DIM)])
    return [Finding(
        codes.KL_RANGE, Severity.FAIL,
        f"KL above {HIGH_KL_PER_DIM:.1f} per dimension ({fmt(value)}) — posterior far from prior",
        evidence,
        "The reference document reads this as underfitting or too low a β: raise β "
        f"({_raise_beta(history)}) to keep the posterior nearer the prior. If reconstruction "
        "is still poor, give the model more capacity (--n-hidden 256, --n-layers 2) or time "
        f"(--epochs {2 * len(history)}).",
        since,
    )]


def _raise_beta(history: History) -> str:
    beta = max_beta(history)
    return "--beta 1" if not beta or beta < 0.5 else f"--beta {2 * beta:g}"


def kl_logged_rule(history: History) -> list[Finding]:
    """Fail when the log holds no KL at all: whether the latent is used cannot be judged.

    Every collapse check reads KL; a log of the total loss alone (PyTorch's example VAE
    prints only ``Average loss``) looks the same for a latent in use and for a collapsed
    one, whose decoder reconstructs from its biases alone. Calling such a run healthy
    would claim what the log cannot show. Returns [] when KL is logged, or when the log
    has no loss either.
    """
    if any(kl_scale(history, split) is not None for split in ("train", "val")):
        return []
    if not any(history.has(f"{split}_{q}") for split in ("train", "val")
               for q in ("loss", "recon")):
        return []  # nothing to judge at all: the engine says so
    logged = ", ".join(c for c in history.frame.columns if c != "epoch")
    return [Finding(
        codes.KL_NOT_LOGGED, Severity.FAIL,
        "KL not logged: whether the latent space is used cannot be judged, so posterior "
        "collapse cannot be ruled out",
        {"columns": logged},
        "Log the KL term every epoch beside the loss (e.g. 'kl=...', summed over latent "
        "dimensions), or measure the trained encoder with `genevae evaluate`.",
        int(history.epochs[-1]),
    )]
