"""Helpers the rules share: series selection, number formatting, shared fixes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genevae.diagnosis.findings import Finding
from genevae.history.history import History

__all__ = [
    "Rule",
    "Series",
    "series",
    "fmt",
    "num",
    "trailing_run",
    "FIX_COLLAPSE",
    "lower_beta",
    "fix_collapse",
    "FIX_LOSS_REDUCTION",
    "FIX_LEARNING_RATE",
    "fix_train_longer",
]

#: A rule reads a history and returns its findings ([] when it cannot judge).
Rule = Callable[[History], list[Finding]]

#: Lowering β goes a decade at a time (0.1 when the run's β is unknown).
LOWER_BETA_FACTOR = 0.1  # genevae choice: a step large enough to change the verdict


def lower_beta(beta: float | None) -> str:
    """``--beta`` a decade below the run's β, e.g. ``"--beta 0.05"`` for β = 0.5."""
    return f"--beta {LOWER_BETA_FACTOR * beta:.2g}" if beta else f"--beta {LOWER_BETA_FACTOR:g}"


def fix_collapse(beta: float | None) -> str:
    """The collapse remedies, with a lower β computed from the run's β when it is known."""
    return (f"Lower β ({lower_beta(beta)}), warm the KL term up (--kl-schedule linear "
            "--warmup-epochs 10), or give each latent dimension free bits (--free-bits 0.1).")


#: The collapse remedies for a run of unknown β.
FIX_COLLAPSE = fix_collapse(None)
FIX_LOSS_REDUCTION = (
    "Use the true per-cell ELBO (--loss-reduction sum): averaging reconstruction over genes "
    "and KL over latent dimensions multiplies β by n_genes / n_latent."
)
FIX_LEARNING_RATE = "Lower the learning rate (--lr 1e-4)."


def fix_train_longer(n_epochs: int) -> str:
    """Advice to double the run length from ``n_epochs``."""
    return f"Train longer (--epochs {2 * n_epochs})."


@dataclass(frozen=True)
class Series:
    """The finite values of one history column, restricted to selected epochs.

    Attributes
    ----------
    column
        Column name, for evidence.
    epochs, values
        Shape (n,), epochs with a finite value, in order.
    """

    column: str
    epochs: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def first(self) -> float:
        return float(self.values[0])

    @property
    def last(self) -> float:
        return float(self.values[-1])

    @property
    def gain(self) -> float:
        """Drop from the first value to the lowest one (≥ 0)."""
        return float(self.values[0] - self.values.min())


def series(
    history: History,
    columns: tuple[str, ...],
    mask: np.ndarray | None = None,
    values: np.ndarray | None = None,
) -> Series | None:
    """The first of ``columns`` the history has, finite epochs only, within ``mask``.

    ``values`` replaces the column's values (e.g. KL converted per dimension) and is
    labelled with ``columns[0]``. Returns ``None`` when nothing finite is left.
    """
    if values is None:
        for column in columns:
            values = history.values(column)
            if values is not None:
                break
        else:
            return None
    else:
        column = columns[0]
    keep = np.isfinite(values)
    if mask is not None:
        keep &= mask
    if not keep.any():
        return None
    return Series(column, history.epochs[keep], values[keep])


def fmt(value: float, digits: int = 2) -> str:
    """A number for a title: ``digits`` decimals below 10, fewer for larger values."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def num(value: float) -> float:
    """A number for evidence: a plain float with six significant digits."""
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else value


def trailing_run(flags: np.ndarray) -> int:
    """Length of the run of ``True`` at the end of ``flags``."""
    false = np.flatnonzero(~flags)
    return len(flags) if len(false) == 0 else len(flags) - 1 - int(false[-1])
