"""Where each file of a run, a sweep and an auto-fix lives. One place, so every layer agrees
on the names.

- :class:`RunFolder`: ``genevae train --out RUN``, one run.
- :class:`SweepFolder`: ``genevae sweep --out OUT``, a run folder per β and their comparison.
- :class:`AttemptsFolder`: ``genevae train --auto-fix --out OUT``, a run folder per attempt
  and their comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunFolder", "SweepFolder", "AttemptsFolder"]


@dataclass(frozen=True)
class RunFolder:
    """The files of a run folder (``genevae train --out RUN``)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def log(self) -> Path:
        """The reference-format lines, one per epoch (readable by ``genevae diagnose``)."""
        return self.root / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    @property
    def diagnosis(self) -> Path:
        return self.root / "diagnosis.txt"

    @property
    def diagnosis_json(self) -> Path:
        return self.root / "diagnosis.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """``figures/<name>.png``: ``kl_heatmap``, ``rate_distortion``, ``latent_scatter``,
        ``probes``."""
        return self.figures / f"{name}.png"

    def entries(self) -> tuple[Path, ...]:
        """The files and folders a run writes at its root (``--overwrite`` removes these)."""
        return (self.config, self.history, self.log, self.checkpoints, self.curves,
                self.diagnosis, self.diagnosis_json, self.metrics, self.report, self.figures)


@dataclass(frozen=True)
class SweepFolder:
    """The files of a β sweep (``genevae sweep --out OUT``): a run folder per β, compared."""

    root: Path

    def run(self, beta: float) -> RunFolder:
        """The run folder of one β: ``beta_0.5``, ``beta_1``."""
        return RunFolder(self.root / f"beta_{beta:g}")

    @property
    def json(self) -> Path:
        """The runs compared and the recommended β."""
        return self.root / "sweep.json"

    @property
    def html(self) -> Path:
        return self.root / "sweep.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """``figures/<name>.png``: ``rate_distortion``, ``kl_and_active_units``,
        ``probe_accuracy``."""
        return self.figures / f"{name}.png"


@dataclass(frozen=True)
class AttemptsFolder:
    """The files of ``genevae train --auto-fix --out OUT``: a run folder per attempt, compared."""

    root: Path

    def attempt(self, k: int) -> RunFolder:
        """The run folder of attempt ``k`` (from 1)."""
        return RunFolder(self.root / f"attempt_{k}")

    @property
    def json(self) -> Path:
        """The attempts in order, each with its verdict and the remedy tried next."""
        return self.root / "attempts.json"

    @property
    def config(self) -> Path:
        """The configuration of the last attempt."""
        return self.root / "config.toml"

    @property
    def report(self) -> Path:
        """The attempts side by side."""
        return self.root / "report.html"
