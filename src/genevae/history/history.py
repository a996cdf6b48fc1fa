"""The per-epoch training record that every reader produces and every rule reads.

A :class:`History` is a table with one row per epoch and a small :class:`HistoryMeta`
that says how its numbers are to be read. Column names:

``epoch``
    1-based epoch number (int).
``kl_weight``
    β used in that epoch, where known.
``{split}_loss``, ``{split}_recon``, ``{split}_kl``, with split ``train`` or ``val``
    The numbers as the run reported them, in the convention ``meta.loss_reduction``:

    - ``"sum"``: reconstruction in nats per cell (summed over genes), KL in nats per
      cell summed over latent dimensions (the true per-cell ELBO);
    - ``"mean"``: the reference document's per-element means, reconstruction
      averaged over genes and KL averaged over latent dimensions;
    - ``"unknown"``: a log that does not say.

    ``loss = recon + kl_weight * kl`` in either convention.
``{split}_{loss,recon,kl}_sum`` and ``..._mean``
    Both conventions side by side (genevae's own runs write both).
``{split}_kl_dim_{j:03d}``
    KL of latent dimension ``j`` in nats, averaged over cells.
``{split}_active_units``
    Dimensions whose posterior-mean variance over cells exceeds 0.01 (Burda et al. 2015).
``train_running_loss``, ``train_running_recon``, ``train_running_kl``
    The optimised objective, the reconstruction and the KL (in the run's
    convention) averaged over the epoch's steps in training mode (dropout on,
    weights moving), as other tools, and the reference log, usually report them.

Columns a source does not provide are absent. Rules ask for a column with
:meth:`History.values` and get ``None`` when it is absent or empty.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from genevae.conventions import per_element_mean
from genevae.files import atomic_write

__all__ = [
    "History",
    "HistoryMeta",
    "SPLITS",
    "LossReduction",
    "CONTROLLED_SCHEDULE",
    "kl_dim_column",
]

SPLITS = ("train", "val")
LossReduction = Literal["sum", "mean", "unknown"]
#: ``HistoryMeta.kl_schedule`` of a run whose β was set by the KL controller.
CONTROLLED_SCHEDULE = "controller"
_META_COLUMNS = ("loss_reduction", "n_genes", "n_latent", "kl_schedule")


def kl_dim_column(split: str, dim: int) -> str:
    """Name of the column holding the KL of latent dimension ``dim`` (nats)."""
    return f"{split}_kl_dim_{dim:03d}"


@dataclass(frozen=True)
class HistoryMeta:
    """How to read a :class:`History`'s numbers.

    Attributes
    ----------
    source
        Where the history came from: ``"genevae"``, ``"reference-text"``,
        ``"scvi-tools"``, ``"lightning"``, ``"keras"``, ``"tensorboard"``, ...
    loss_reduction
        ``"sum"`` (nats per cell), ``"mean"`` (per-element means) or ``"unknown"``.
    n_genes, n_latent
        Sizes of the modelled data and latent space, where known.
    kl_schedule
        Name of the β schedule where known (``"constant"``, ``"linear"``,
        ``"cyclical"``, ``"sigmoid"``, or :data:`CONTROLLED_SCHEDULE` when the KL
        controller set β).
    path
        The file read, for messages.
    notes
        What a reader had to decide that the numbers alone do not show (which
        Lightning version was read, how logged steps became epochs), one sentence
        each, for the diagnosis to print.
    """

    source: str = "genevae"
    loss_reduction: LossReduction = "unknown"
    n_genes: int | None = None
    n_latent: int | None = None
    kl_schedule: str | None = None
    path: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class History:
    """Per-epoch training record (see the module docstring for the columns)."""

    frame: pd.DataFrame
    meta: HistoryMeta = dataclasses.field(default_factory=HistoryMeta)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, float]], meta: HistoryMeta) -> History:
        """Build a history from one mapping per epoch, sorted by ``epoch``."""
        frame = pd.DataFrame.from_records(list(records))
        if "epoch" in frame:
            frame = frame.sort_values("epoch", kind="stable").reset_index(drop=True)
        return cls(frame=frame, meta=meta)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def epochs(self) -> np.ndarray:
        """Epoch numbers, shape (n_epochs,)."""
        return self.frame["epoch"].to_numpy(dtype=int)

    def has(self, column: str) -> bool:
        """Whether ``column`` exists and holds at least one finite value."""
        return self.values(column) is not None

    def values(self, column: str) -> np.ndarray | None:
        """Column as float array (n_epochs,), or ``None`` if absent or entirely missing."""
        if column not in self.frame:
            return None
        values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        if np.all(np.isnan(values)):
            return None
        return values

    def kl_per_dim(self, split: str) -> np.ndarray | None:
        """KL of each latent dimension per epoch, shape (n_epochs, n_latent), nats."""
        prefix = f"{split}_kl_dim_"
        columns = sorted(c for c in self.frame.columns if c.startswith(prefix))
        if not columns:
            return None
        return self.frame[columns].to_numpy(dtype=float)

    def kl_mean_per_dim(self, split: str) -> np.ndarray | None:
        """KL averaged over latent dimensions per epoch, shape (n_epochs,), nats per dimension.

        This is the quantity the reference document's KL bands apply to. It comes
        from the per-dimension columns when present, from ``{split}_kl`` directly
        for the mean convention, or from ``{split}_kl / n_latent`` for the sum
        convention when ``n_latent`` is known; otherwise ``None``.
        """
        per_dim = self.kl_per_dim(split)
        if per_dim is not None:
            return per_dim.mean(axis=1)
        if self.has(f"{split}_kl_mean"):
            return self.values(f"{split}_kl_mean")
        kl = self.values(f"{split}_kl")
        if kl is None:
            return None
        if self.meta.loss_reduction == "mean":
            return kl
        if self.meta.loss_reduction == "sum" and self.meta.n_latent:
            return per_element_mean(kl, self.meta.n_latent)
        return None

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the history, with its meta as constant columns, atomically."""
        frame = self.frame.copy()
        for name in _META_COLUMNS:
            frame[name] = getattr(self.meta, name)
        with atomic_write(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")

    @classmethod
    def read_csv(cls, path: str | os.PathLike[str], source: str = "genevae") -> History:
        """Read a history written by :meth:`to_csv`."""
        frame = pd.read_csv(path)
        meta_values: dict[str, object] = {}
        for name in _META_COLUMNS:
            if name in frame:
                value = frame[name].iloc[0] if len(frame) else None
                meta_values[name] = _clean_meta(value)
                frame = frame.drop(columns=name)
        meta = HistoryMeta(source=source, path=str(path), **meta_values)
        return cls(frame=frame, meta=meta)


def _clean_meta(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return int(value)
    return value
