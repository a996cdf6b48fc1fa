"""Which epoch each logged row belongs to, when a log counts epochs, steps or both.

Text logs and JSON lines hand over one row per logged line: its epoch counter, its
step counter (either may be missing) and its metrics. :func:`row_epochs` gives each
row an epoch:

- rows with an epoch keep it; a row without one takes the epoch of the next row
  that has one (training loops print per-step lines, then an epoch summary), and
  rows after the last such row belong to the epoch after it (the one in progress
  when the log ends);
- in a log with no epoch at all, steps are grouped into epochs when the number of
  steps per epoch can be known: validation rows at evenly spaced steps (at least
  :data:`MIN_VALIDATIONS_TO_GROUP` of them) each end an epoch, and the steps up to
  and including a validation row's step are that epoch's;
- otherwise each logged step is one point of the history, numbered 1, 2, ... in
  step order, and a note says that the points are steps, not epochs.

Several rows in one epoch are then reduced as everywhere else in the readers
(:mod:`~genevae.history.readers.assemble`): each column keeps the last value
logged in the epoch, the step whose β the epoch-end ``kl_weight`` reports. The
notes (``HistoryMeta.notes``) say which of these cases applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, history_from_records
from genevae.history.readers.columns import classify_name

__all__ = [
    "Row", "row_epochs", "history_from_rows", "has_metric", "mapped_names", "is_validation",
    "MIN_VALIDATIONS_TO_GROUP",
]

#: Validation rows needed before their spacing is taken as the epoch length.
MIN_VALIDATIONS_TO_GROUP = 2  # genevae choice: one gap is the fewest that shows a spacing


@dataclass(frozen=True)
class Row:
    """One logged line: its counters (``None`` where absent) and its metrics."""

    epoch: int | None
    step: int | None
    metrics: Mapping[str, float]


def history_from_rows(
    rows: Sequence[Row],
    *,
    source: str,
    where: str,
    column_map: Mapping[str, str] | None,
    zero_based: bool | None,
) -> History:
    """A history from a line reader's rows, epochs found by :func:`row_epochs`.

    Parameters
    ----------
    rows
        In log order, each with a counter and a metric (:func:`has_metric`).
    source, where, column_map
        As in :func:`~genevae.history.readers.assemble.history_from_columns`.
    zero_based
        Whether the log counts epochs from 0 (``None``: decide by the first epoch);
        epochs derived from steps are 1-based whatever this says.

    Raises
    ------
    NoHistoryFound
        When there is no row.
    """
    if not rows:
        raise NoHistoryFound("No line has an epoch or step number with a loss, recon or kl value.")
    epochs, notes = row_epochs(rows, is_validation)
    logged = any(row.epoch is not None for row in rows)
    records = [(epoch, row.metrics) for epoch, row in zip(epochs, rows, strict=True)]
    return history_from_records(records, source=source, where=where, column_map=column_map,
                                zero_based=zero_based if logged else False, notes=notes)


def mapped_names(column_map: Mapping[str, str] | None) -> frozenset[str]:
    """The ``--map``ped source names, lower case, for :func:`has_metric`."""
    return frozenset(name.strip().lower() for name in (column_map or {}).values())


def has_metric(metrics: Mapping[str, float], mapped: frozenset[str]) -> bool:
    """Whether a row names a loss, reconstruction, KL or β, or one of the ``mapped``
    names (also without its section: ``--map val_recon=rec`` for ``val/rec``)."""
    for name in metrics:
        lowered = name.lower()
        if (classify_name(name) is not None or lowered in mapped
                or lowered.partition("/")[2] in mapped):
            return True
    return False


def row_epochs(
    rows: Sequence[Row], is_validation: Callable[[Mapping[str, float]], bool]
) -> tuple[list[int], tuple[str, ...]]:
    """The epoch of each row and the notes that say how it was found.

    Parameters
    ----------
    rows
        In log order; every row has an epoch or a step.
    is_validation
        Whether a row's metrics include a validation value.

    Returns
    -------
    epochs, notes
        One epoch per row (as logged where the log counts epochs, 1-based where
        they are derived from steps) and sentences for ``HistoryMeta.notes``.
    """
    if any(row.epoch is not None for row in rows):
        epochs = _fill_from_next_epoch([row.epoch for row in rows])
        return epochs, _per_step_note(rows, epochs)
    steps = np.array([row.step for row in rows], dtype=np.int64)
    validation = np.unique([row.step for row in rows if is_validation(row.metrics)])
    gaps = np.diff(validation)
    if len(validation) >= MIN_VALIDATIONS_TO_GROUP and np.all(gaps == gaps[0]):
        period = int(gaps[0])
        after_last = steps - validation[-1]  # steps past the last validation: later epochs
        epochs = np.where(after_last > 0, len(validation) + 1 + (after_last - 1) // period,
                          np.searchsorted(validation, steps, side="left") + 1)
        note = (f"No epoch counter: steps are grouped into epochs of {period} steps, one "
                "ending at each validation line; each epoch keeps its last logged value.")
        return epochs.tolist(), (note,)
    unique = np.unique(steps)
    note = (f"No epoch counter and no evenly spaced validation lines: each of the "
            f"{len(unique)} logged steps ({unique[0]} to {unique[-1]}) is one point of the "
            "history, numbered from 1; the points are steps, not epochs.")
    return (np.searchsorted(unique, steps) + 1).tolist(), (note,)


def _fill_from_next_epoch(epochs: Sequence[int | None]) -> list[int]:
    """Missing epochs from the next row that has one; after the last, the epoch after it."""
    filled: list[int] = []
    following = max(e for e in epochs if e is not None) + 1
    for epoch in reversed(epochs):
        if epoch is not None:
            following = epoch
        filled.append(following)
    return filled[::-1]


def _per_step_note(rows: Sequence[Row], epochs: Sequence[int]) -> tuple[str, ...]:
    """A note when epochs hold several logged steps, else none."""
    steps_by_epoch: dict[int, set[int]] = {}
    for row, epoch in zip(rows, epochs, strict=True):
        if row.step is not None:
            steps_by_epoch.setdefault(epoch, set()).add(row.step)
    if not any(len(steps) > 1 for steps in steps_by_epoch.values()):
        return ()
    return ("Several steps are logged per epoch: each epoch keeps the last value logged in "
            "it (the last step's, not a mean over the epoch).",)


def is_validation(metrics: Mapping[str, float]) -> bool:
    """Whether any of the names is a validation loss, reconstruction or KL."""
    return any((match := classify_name(name)) is not None and match.column.startswith("val_")
               for name in metrics)
