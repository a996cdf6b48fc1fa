"""Put a history's KL and β on the scale the reference document's numbers use.

The reference document's KL bands (0.1–1.0 healthy, above 2.0 far from the prior,
≈ 0 collapsed) are per latent dimension: its example run averaged KL over latent
dimensions (reference README, "Facts about that example run"). Histories come in
three conventions (``HistoryMeta.loss_reduction``):

- ``"mean"``: KL is already averaged over latent dimensions; the bands apply.
- ``"sum"``: KL is summed over latent dimensions; it is divided by ``n_latent``
  when known. When ``n_latent`` is unknown the bands cannot be applied, and
  collapse is judged on the total KL, the rate, which bounds the information the
  latent holds about a cell (:func:`rate_per_cell`).
- ``"unknown"``: the logged KL is compared with the bands as the reference
  document does, and the assumption is stated in a note.

The same mean convention also averages reconstruction over genes, which
multiplies β by ``n_genes / n_latent`` relative to the true per-cell ELBO
(reference facts: 0.5 · 2000 / 64 ≈ 15.6). Both conversions come from
:mod:`genevae.conventions` (:func:`~genevae.conventions.per_element_mean`,
:func:`~genevae.conventions.effective_beta`), which the trainer that writes the mean
convention uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genevae.conventions import effective_beta, per_element_mean
from genevae.diagnosis.thresholds import COLLAPSE_RATE, HEALTHY_KL_PER_DIM, HIGH_KL_PER_DIM
from genevae.history.history import History, HistoryMeta

__all__ = [
    "KLScale",
    "kl_scale",
    "rate_per_cell",
    "max_beta",
    "reduction_multiplier",
    "unit_notes",
]

_BAND = f"{HEALTHY_KL_PER_DIM[0]:.1f}–{HEALTHY_KL_PER_DIM[1]:.1f}"


@dataclass(frozen=True)
class KLScale:
    """A split's KL per epoch on the scale the rules compare with thresholds.

    Attributes
    ----------
    values
        KL per epoch, shape (n_epochs,): nats per latent dimension when
        ``bands_apply``, otherwise the total over latent dimensions (nats per cell).
    bands_apply
        Whether the per-dimension bands (healthy, high) may be applied.
    series
        The column(s) the values come from, for evidence.
    note
        One sentence stating the conversion, for the diagnosis notes.
    """

    values: np.ndarray
    bands_apply: bool
    series: str
    note: str


def kl_scale(history: History, split: str) -> KLScale | None:
    """KL of ``split`` per epoch, converted to nats per latent dimension where possible.

    Returns ``None`` when the history has no KL for ``split``.
    """
    per_dim = history.kl_per_dim(split)
    if per_dim is not None:
        n_dims = per_dim.shape[1]
        return KLScale(
            per_dim.mean(axis=1), True, f"{split}_kl_dim_*",
            f"KL per dimension is the mean of the {n_dims} per-dimension KL columns (nats): "
            f"the {_BAND} band applies to it directly.",
        )
    if history.has(f"{split}_kl_mean"):
        return KLScale(
            history.values(f"{split}_kl_mean"), True, f"{split}_kl_mean",
            f"KL is averaged over latent dimensions ({split}_kl_mean): "
            f"the {_BAND} band applies directly.",
        )
    kl = history.values(f"{split}_kl")
    if kl is None:
        return None
    column = f"{split}_kl"
    reduction, n_latent = history.meta.loss_reduction, history.meta.n_latent
    if reduction == "mean":
        return KLScale(
            kl, True, column,
            f"KL is the per-element mean (reference convention): the {_BAND} band applies "
            "directly.",
        )
    if reduction == "sum" and n_latent:
        return KLScale(
            per_element_mean(kl, n_latent), True, column,
            f"KL is summed over {n_latent} latent dimensions; divided by {n_latent} to compare "
            f"with the {_BAND} band.",
        )
    if reduction == "sum":
        return KLScale(
            kl, False, column,
            "KL is summed over latent dimensions and n_latent is unknown: the per-dimension "
            f"bands ({_BAND}, above {HIGH_KL_PER_DIM:.1f}) cannot be applied. Collapse is judged "
            f"on the total KL, the rate: below log 2 = {COLLAPSE_RATE:.2f} nats per cell the "
            "latent holds less than one binary split of the cells (rate ≥ I(x; z)).",
        )
    return KLScale(
        kl, True, column,
        "The log does not say how KL was reduced: the bands are applied to the logged KL as "
        "the reference document does, which assumes KL averaged over latent dimensions. If "
        "the tool sums KL over n latent dimensions, divide its KL by n.",
    )


def rate_per_cell(history: History, split: str) -> tuple[np.ndarray, str] | None:
    """The rate of ``split`` per epoch: KL summed over latent dimensions, nats per cell.

    The rate bounds what the latent knows about a cell, rate ≥ I(x; z), whatever the
    latent size. It is known from per-dimension columns (their sum), from a
    ``{split}_kl_sum`` column, from a summed KL, or from a per-dimension mean times a
    known ``n_latent``; ``None`` otherwise (an unknown convention, or a mean with
    ``n_latent`` unknown). Returns (values of shape (n_epochs,), the column(s) read).
    """
    per_dim = history.kl_per_dim(split)
    if per_dim is not None:
        return per_dim.sum(axis=1), f"{split}_kl_dim_* (summed)"
    if history.has(f"{split}_kl_sum"):
        return history.values(f"{split}_kl_sum"), f"{split}_kl_sum"
    n_latent, reduction = history.meta.n_latent, history.meta.loss_reduction
    kl = history.values(f"{split}_kl")
    if kl is not None and reduction == "sum":
        return kl, f"{split}_kl"
    if kl is not None and reduction == "mean" and n_latent:
        return kl * n_latent, f"{split}_kl × {n_latent}"
    if history.has(f"{split}_kl_mean") and n_latent:
        return history.values(f"{split}_kl_mean") * n_latent, f"{split}_kl_mean × {n_latent}"
    return None


def max_beta(history: History) -> float | None:
    """The largest KL weight β of the run (the schedule's target), or ``None`` if not logged."""
    beta = history.values("kl_weight")
    if beta is None:
        return None
    return float(np.nanmax(beta))


def reduction_multiplier(meta: HistoryMeta) -> float | None:
    """Factor by which the mean convention multiplies β: ``n_genes / n_latent``, the
    effective β of β = 1 (:func:`~genevae.conventions.effective_beta`).

    Returns ``None`` for other conventions or when a size is unknown.
    """
    if meta.loss_reduction != "mean" or not meta.n_genes or not meta.n_latent:
        return None
    return effective_beta(1.0, meta.n_genes, meta.n_latent)


def unit_notes(history: History) -> list[str]:
    """Sentences stating how KL and β were read, for the diagnosis notes."""
    notes = []
    for split in ("train", "val"):
        scale = kl_scale(history, split)
        if scale is not None:
            notes.append(scale.note)
            break
    meta = history.meta
    if meta.loss_reduction == "mean":
        multiplier = reduction_multiplier(meta)
        beta = max_beta(history)
        if multiplier is None:
            notes.append(
                "Mean reduction: relative to the true per-cell ELBO, β is multiplied by "
                "n_genes / n_latent; the sizes are not recorded, so the effective β is unknown."
            )
        else:
            note = (
                "Mean reduction: relative to the true per-cell ELBO, β is multiplied by "
                f"n_genes / n_latent = {meta.n_genes} / {meta.n_latent} = {multiplier:.1f}"
            )
            if beta is not None:
                note += f" (effective β = {beta:g} × {multiplier:.1f} = {beta * multiplier:.1f})"
            notes.append(note + ".")
    return notes
