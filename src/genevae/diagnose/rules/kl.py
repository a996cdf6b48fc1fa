"""KL trend and KL range: is the latent space used, and by how much.

Both rules read the training KL (as the reference document does; validation KL
when training KL is not logged), converted per latent dimension by
:func:`~genevae.diagnose.units.kl_scale`, at the epochs where β is at full strength
(:func:`~genevae.diagnose.rules.schedule.beta_window`).
"""

from __future__ import annotations

import numpy as np

from genevae.diagnose.findings import Finding, Severity
from genevae.diagnose.rules.common import Series, fix_collapse, fmt, num, series, trailing_run
from genevae.diagnose.rules.schedule import beta_window
from genevae.diagnose.thresholds import (
    COLLAPSE_KL_PER_DIM,
    HEALTHY_KL_PER_DIM,
    HIGH_KL_PER_DIM,
    KL_TREND_TOLERANCE,
)
from genevae.diagnose.units import KLScale, kl_scale, max_beta
from genevae.history.history import History

__all__ = ["kl_series", "fmt_kl", "kl_trend_rule", "kl_range_rule"]

_LOW, _HIGH = HEALTHY_KL_PER_DIM


def kl_series(history: History, mask: np.ndarray | None) -> tuple[Series, KLScale] | None:
    """Training KL (else validation KL) on the band scale, finite epochs within ``mask``."""
    for split in ("train", "val"):
        scale = kl_scale(history, split)
        if scale is not None:
            kl = series(history, (scale.series,), mask, scale.values)
            return None if kl is None else (kl, scale)
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
    if last < COLLAPSE_KL_PER_DIM:
        where = "stays near 0" if first < COLLAPSE_KL_PER_DIM else "near 0 at the end"
        return [Finding(
            "kl_trend", Severity.WARN, f"KL {where} {span} — latent space not used",
            evidence, fix_collapse(max_beta(history)), int(kl.epochs[-1]),
        )]
    if last > first * (1 + KL_TREND_TOLERANCE):
        return [Finding(
            "kl_trend", Severity.OK, f"KL increasing {span} — latent space is being used", evidence
        )]
    if last >= first * (1 - KL_TREND_TOLERANCE):
        return [Finding(
            "kl_trend", Severity.OK, f"KL stable {span} — latent space is being used", evidence
        )]
    if scale.bands_apply and last < _LOW:
        return [Finding(
            "kl_trend", Severity.WARN, f"KL decreasing {span} — latent space being abandoned",
            evidence, fix_collapse(max_beta(history)), int(kl.epochs[-1]),
        )]
    return [Finding(
        "kl_trend", Severity.OK,
        f"KL decreasing {span} — settling towards the prior, latent space still used", evidence,
    )]


def kl_range_rule(history: History) -> list[Finding]:
    """KL per dimension at the last full-β epoch against the reference bands.

    Healthy 0.1–1.0, far from the prior above 2.0 (reference doc, "Interpreting KL
    Values"); 1.0–2.0 is not named there and passes. Returns [] when the bands
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
            "kl_range", Severity.WARN,
            f"KL below the healthy range ({fmt_kl(value)} < {_LOW:.1f}) — latent space barely used",
            evidence, fix_collapse(max_beta(history)), since,
        )]
    if value <= _HIGH:
        return [Finding("kl_range", Severity.OK, f"KL in healthy range ({_LOW:.1f}–{_HIGH:.1f})",
                        evidence)]
    if value <= HIGH_KL_PER_DIM:
        return [Finding(
            "kl_range", Severity.OK,
            f"KL moderately high ({fmt(value)}, between {_HIGH:.1f} and {HIGH_KL_PER_DIM:.1f})",
            evidence,
        )]
    since = int(kl.epochs[-trailing_run(kl.values > HIGH_KL_PER_DIM)])
    return [Finding(
        "kl_range", Severity.WARN,
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
