"""Guess a log's loss convention from the size of its numbers.

A log that does not say how its losses were reduced is still readable by scale:
per-element means (the reference convention, ``loss_reduction="mean"``) are of
order one, while per-cell sums over hundreds or thousands of genes are in the
hundreds or thousands of nats. Anything between is left ``"unknown"``.
"""

from __future__ import annotations

import numpy as np

from genevae.history.history import History, LossReduction

__all__ = ["infer_loss_reduction", "MEAN_RECON_MAX", "MEAN_KL_MAX", "SUM_RECON_MIN"]

#: Typical reconstruction per gene stays below this: MSE of z-scored genes is about
#: 1 and a negative-binomial NLL per gene of UMI counts a few nats.
MEAN_RECON_MAX = 10.0  # genevae choice; reference log: recon 0.24-0.84 (mean convention)
#: Typical KL per latent dimension stays below this in a per-dimension mean.
MEAN_KL_MAX = 10.0  # genevae choice; reference doc already calls > 2.0 "far from prior"
#: Typical reconstruction per cell, summed over hundreds of genes, is at least this.
SUM_RECON_MIN = 100.0  # genevae choice; reference facts: 2,000 genes x ~0.25 per gene

#: Series whose typical size decides, in order of preference.
_SCALE_COLUMNS = ("train_recon", "val_recon", "train_loss", "val_loss")


def infer_loss_reduction(history: History) -> LossReduction:
    """Guess ``"mean"``, ``"sum"`` or ``"unknown"`` from the typical loss size.

    The typical size is the median of |reconstruction| over finite epochs (the
    total loss when no reconstruction is logged; absolute because a Gaussian
    likelihood with learned variance can go negative). The KL is the median of
    the finite training KL.

    - size >= ``SUM_RECON_MIN``: ``"sum"`` (nats per cell, summed over genes);
    - size < ``MEAN_RECON_MAX`` and KL (if logged) < ``MEAN_KL_MAX``: ``"mean"``;
    - otherwise, or with no finite numbers: ``"unknown"``.

    Parameters
    ----------
    history
        Any history; only its loss columns are read.

    Returns
    -------
    str
        The guessed ``loss_reduction``.
    """
    size = next(
        (s for s in (_typical(history, c) for c in _SCALE_COLUMNS) if s is not None), None
    )
    if size is None:
        return "unknown"
    if size >= SUM_RECON_MIN:
        return "sum"
    kl = _typical(history, "train_kl")
    if size < MEAN_RECON_MAX and (kl is None or kl < MEAN_KL_MAX):
        return "mean"
    return "unknown"


def _typical(history: History, column: str) -> float | None:
    values = history.values(column)
    if values is None:
        return None
    finite = np.abs(values[np.isfinite(values)])
    return float(np.median(finite)) if finite.size else None
