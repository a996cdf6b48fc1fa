"""Tidy per-epoch training records, their CSV form and the reference log line."""

from genevae.history.history import History, HistoryMeta
from genevae.history.logline import format_epoch_line

__all__ = ["History", "HistoryMeta", "format_epoch_line"]
