"""Where each file of a run lives. One place, so every layer agrees on the names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunFolder"]


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
