"""JSON lines: one JSON object per logged epoch or step.

Loops that log with ``print(json.dumps(record))`` or append to a ``metrics.jsonl``
write one object per line::

    {"epoch": 3, "step": 108, "train": {"loss": 1734.7, "kl": 4.4}, "val": {"loss": 1790.3}}

- nested objects are flattened with ``/`` (``train/loss``, ``val/kl``), so the split
  of a nested key comes from its parent as in TensorBoard tags;
- the epoch is the key ``epoch`` (or ``epochs``), at any depth; the step is
  ``step``, ``global_step``, ``_step``, ``iteration``, ``iter`` or ``it``. A
  fractional epoch (a position within an epoch) is not an epoch. Rows become
  epochs by :func:`~genevae.history.readers.steps.row_epochs`' rule; logged epochs
  that start at 0 are shifted to :class:`History`'s 1-based numbers;
- lines that are not JSON objects (a banner, a truncated last line of a killed
  run) are skipped; the first non-blank line must be one;
- values are numbers (``NaN`` and ``Infinity``, which Python's ``json`` writes,
  included); strings, booleans and lists are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound
from genevae.history.readers.steps import Row, has_metric, history_from_rows, mapped_names

__all__ = ["jsonl_history", "is_json_lines", "flatten"]

_EPOCH_KEYS = frozenset({"epoch", "epochs"})
_STEP_KEYS = frozenset({"step", "global_step", "_step", "iteration", "iter", "it"})
_MAX_DEPTH = 4  # genevae choice: {"metrics": {"train": {"loss": ...}}} and a margin


def jsonl_history(text: str, where: str, column_map: Mapping[str, str] | None) -> History:
    """Read JSON lines (see the module docstring).

    Raises
    ------
    NoHistoryFound
        When the first line is not a JSON object, or no object has an epoch or step
        key and a loss, reconstruction or KL.
    GenevaeError
        For an ambiguous key or a bad ``--map``.
    """
    objects = _objects(text)
    first = next(objects, None)
    if first is None:
        raise NoHistoryFound("The first line is not a JSON object, so these are not JSON lines.")
    mapped = mapped_names(column_map)
    rows = []
    for document in (first, *objects):
        values = flatten(document)
        epoch = _counter(values, _EPOCH_KEYS)
        step = _counter(values, _STEP_KEYS)
        metrics = {name: value for name, value in values.items()
                   if _last_part(name) not in _EPOCH_KEYS | _STEP_KEYS}
        if (epoch is not None or step is not None) and has_metric(metrics, mapped):
            rows.append(Row(epoch, step, metrics))
    if not rows:
        raise NoHistoryFound(
            "No JSON line has an 'epoch' or 'step' key together with a loss, recon or kl value."
        )
    return history_from_rows(rows, source="jsonl", where=where, column_map=column_map,
                             zero_based=None)


def is_json_lines(text: str) -> bool:
    """Whether the first non-blank line is a JSON object of its own."""
    return next(_objects(text), None) is not None


def flatten(document: Mapping[str, object], prefix: str = "", depth: int = 0) -> dict[str, float]:
    """Numbers of a JSON object by ``/``-joined key: ``{"train": {"loss": 1}}`` ->
    ``{"train/loss": 1.0}``; non-numbers are left out."""
    values: dict[str, float] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < _MAX_DEPTH:
            values.update(flatten(value, f"{name}/", depth + 1))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values[name] = float(value)
    return values


def _objects(text: str) -> Iterator[dict]:
    """The JSON objects of the text, one a line; nothing if the first line is not one."""
    first = True
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            yield document
        elif first:
            return
        first = False


def _counter(values: Mapping[str, float], keys: frozenset[str]) -> int | None:
    """The first whole-number value whose key's last part is one of ``keys``."""
    for name, value in values.items():
        if _last_part(name) in keys and value.is_integer() and value >= 0:
            return int(value)
    return None


def _last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1].lower()
