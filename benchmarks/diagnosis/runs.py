"""What one benchmark run is (:class:`RunSpec`) and what its training hands back.

The corpus itself, the list of runs and their settings, is in ``corpus_plan.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from measure import LatentMeasures, Tracker

__all__ = ["RunSpec", "SourceResult"]


@dataclass(frozen=True)
class RunSpec:
    """One training run of the corpus.

    Attributes
    ----------
    run_id
        Folder name under ``corpus/``.
    source
        ``scvi``, ``lightning_csv``, ``lightning_tensorboard``, ``loop`` (plain PyTorch
        printing text) or ``keras`` (plain PyTorch printing Keras ``fit()`` output).
    style
        Export or line style of the log (see each source's module).
    dataset
        Key of ``bench_data.DATASETS``.
    n_epochs
        N, the epochs the log shows; every run trains 2N epochs (``truth.py``).
    seed
        Seed of torch, numpy and the data loaders.
    settings
        Model and optimisation settings, as the source's keyword names.
    intent
        What the settings were chosen to provoke (a design note, never the truth).
    """

    run_id: str
    source: str
    style: str
    dataset: str
    n_epochs: int
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    intent: str = ""


@dataclass(frozen=True)
class SourceResult:
    """A trained run: its log and the measurements the truth is computed from.

    Attributes
    ----------
    log_path
        The log to diagnose, as the tool wrote it.
    heldout_loss
        Held-out loss (nats per cell, run's target KL weight) after epochs 0..2N.
    latent
        Latent measurements at epoch N.
    params_finite
        Whether every parameter was finite at epoch N.
    last_logged_losses
        The loss values of the log's last epoch, by the log's column names.
    n_genes, kl_weight
        Genes modelled; target KL weight in the per-cell-sum convention.
    """

    log_path: Path
    heldout_loss: tuple[float, ...]
    latent: LatentMeasures
    params_finite: bool
    last_logged_losses: dict[str, float]
    n_genes: int
    kl_weight: float

    @classmethod
    def from_tracker(cls, log_path: Path, tracker: Tracker, last_logged_losses: dict[str, float],
                     *, n_genes: int, kl_weight: float) -> SourceResult:
        if tracker.latent is None or tracker.params_finite is None:
            raise RuntimeError(f"{log_path}: the model was not measured at epoch {tracker.n_logged}")
        return cls(log_path, tuple(tracker.heldout), tracker.latent, tracker.params_finite,
                   dict(last_logged_losses), n_genes, kl_weight)

    @property
    def last_logged_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.last_logged_losses.values())

    def measured(self) -> dict[str, Any]:
        """The measurements as JSON-ready numbers (non-finite as strings)."""
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value
        return clean({
            "heldout_loss_by_epoch": list(self.heldout_loss),
            **asdict(self.latent),
            "params_finite": self.params_finite,
            "last_logged_losses": self.last_logged_losses,
            "n_genes": self.n_genes,
            "target_kl_weight_sum_convention": self.kl_weight,
        })
