"""genevae: train variational autoencoders on gene expression and diagnose the training.

Public API::

    genevae.read(path)                 # .h5ad, .csv/.tsv, 10x folder -> AnnData
    genevae.GeneVAE(...).fit(adata)    # train; returns the History
    genevae.diagnose(history)          # findings and verdict
    genevae.read_history(path)         # any tool's training log -> History

The names are imported on first use, so ``import genevae`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "GeneVAE": "genevae.api",
    "read": "genevae.data.io",
    "diagnose": "genevae.diagnosis.engine",
    "read_history": "genevae.history.readers",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'genevae' has no attribute {name!r}")
