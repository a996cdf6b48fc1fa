"""``genevae diagnose LOG``: read any tool's training log and diagnose it.

The diagnosis reads the history alone, never a model: nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Diagnosis
from genevae.history.readers import read_history

__all__ = ["diagnose_log"]


def diagnose_log(
    path: str | Path,
    format: str = "auto",
    column_map: dict[str, str] | None = None,
    n_latent: int | None = None,
    n_genes: int | None = None,
    loss_reduction: str | None = None,
) -> Diagnosis:
    """Read any tool's training log (see :func:`~genevae.history.readers.read_history`)
    and diagnose it."""
    history = read_history(path, format=format, column_map=column_map, n_latent=n_latent,
                           n_genes=n_genes, loss_reduction=loss_reduction)
    return diagnose(history)
