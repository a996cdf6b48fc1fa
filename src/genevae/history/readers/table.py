"""CSV and JSON training tables: genevae's own, scvi-tools, Lightning, Keras, anything.

- genevae's ``history.csv`` (it has a ``loss_reduction`` column) is read as written,
  with :meth:`History.read_csv`.
- scvi-tools ``model.history_`` exported as CSV (``pd.concat(history_.values(),
  axis=1).to_csv()``) or JSON (``{key: frame[key].tolist()}``, ``{key:
  frame.to_dict()}`` or a frame's ``to_json()``). scvi-tools reports per-cell sums
  (reconstruction summed over genes, KL over latent dimensions), so
  ``loss_reduction="sum"``. ``elbo_*`` is recon + kl (β not applied) and
  ``train_loss_epoch`` / ``validation_loss`` are recon + kl_weight·kl; the loss
  column prefers the latter. KL is ``kl_local`` plus ``kl_global`` where logged.
- Lightning CSVLogger ``metrics.csv``: training and validation metrics on separate
  rows, several rows per epoch; one value per epoch as described in
  :mod:`~genevae.history.readers.assemble` (``*_epoch`` columns preferred).
- Keras ``history.history`` as JSON (dict of lists, epoch = position + 1) or its
  CSVLogger file.
- Weights & Biases CSV exports: the run-history export (``_step``, ``_runtime``,
  ``_timestamp``, logged keys such as ``epoch``, ``train/loss``,
  ``trainer/global_step``) and a chart's export (``Step``, ``<run> - train/loss``,
  ``<run> - train/loss__MIN``, ``<run> - train/loss__MAX``): the ``__MIN``/``__MAX``
  band columns are dropped and the run name is stripped when the chart shows one
  run (with several, the columns keep it and ``--map`` chooses).
- Anything else whose names :mod:`~genevae.history.readers.columns` recognises.

Epochs come from an ``epoch`` column (or ``--map epoch=...``); without one, from a
step column (``step``, ``_step``, ``Step``, ``global_step``, ...) by
:func:`~genevae.history.readers.steps.row_epochs`' rule; else from the row position
or JSON index. scvi-tools, Lightning and Keras count from 0; a table whose epochs
start at 0 is shifted to :class:`History`'s 1-based numbers.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genevae.errors import GenevaeError
from genevae.history.history import History, LossReduction
from genevae.history.readers.assemble import NoHistoryFound, history_from_columns, parse_cell
from genevae.history.readers.columns import epoch_column
from genevae.history.readers.jsonl import is_json_lines, jsonl_history
from genevae.history.readers.steps import Row, is_validation, row_epochs

__all__ = ["csv_history", "json_history"]

#: Names only scvi-tools' ``history_`` has.
_SCVI_NAMES = frozenset({
    "elbo_train", "elbo_validation", "reconstruction_loss_train",
    "reconstruction_loss_validation", "kl_local_train", "kl_local_validation",
})
#: Columns only a Weights & Biases run-history export has.
_WANDB_NAMES = frozenset({"_step", "_runtime", "_timestamp"})
#: A W&B chart export's band columns, and the separator after the run name.
_WANDB_BAND_SUFFIXES = ("__MIN", "__MAX")
_WANDB_RUN_SEPARATOR = " - "
#: Step counter columns, for tables without an epoch column.
_STEP_COLUMNS = ("step", "_step", "global_step", "trainer/global_step", "iteration", "iter")
_REDUCTIONS = ("sum", "mean", "unknown")
_MAX_JSON_DEPTH = 3
_Scalar = (int, float, str, bool, type(None))


def csv_history(path: Path, text: str, column_map: Mapping[str, str] | None) -> History:
    """Read a CSV (or tab/semicolon separated) training table.

    Parameters
    ----------
    path
        The file (genevae's own ``history.csv`` is re-read from it).
    text
        Its decoded content.
    column_map
        ``--map`` overrides naming columns.

    Raises
    ------
    NoHistoryFound
        When the table has no loss, reconstruction or KL column with values.
    GenevaeError
        For an ambiguous column or a bad ``--map``.
    """
    where = str(path)
    try:
        raw = pd.read_csv(io.StringIO(text), sep=_separator(text), dtype=str,
                          keep_default_na=False, skipinitialspace=True)
    except ValueError as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise NoHistoryFound(f"Not a readable CSV table: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if "loss_reduction" in raw.columns:
        return _genevae_history(path)
    names = _chart_export_names(list(raw.columns))
    columns = {name: raw[column].tolist() for column, name in names.items()}
    source = "wandb" if len(names) < len(raw.columns) else None
    return _history(columns, list(range(len(raw))), where, column_map, source)


def json_history(path: Path, text: str, column_map: Mapping[str, str] | None) -> History:
    """Read a JSON training table: a dict of lists (Keras ``history.history``,
    scvi-tools ``history_``), a dict of ``{index: value}`` dicts (pandas
    ``to_json()``, scvi-tools ``{key: frame.to_dict()}``), a list of row dicts, or
    pandas' ``orient="split"``; or JSON lines, one object a line
    (:mod:`~genevae.history.readers.jsonl`).

    Raises
    ------
    NoHistoryFound
        When the JSON is invalid or holds no recognisable metric.
    GenevaeError
        For an ambiguous key or a bad ``--map``.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        if is_json_lines(text):
            return jsonl_history(text, str(path), column_map)
        raise NoHistoryFound(f"Not valid JSON: {exc}") from None
    by_index = _json_columns(document)
    index = list(dict.fromkeys(key for cells in by_index.values() for key in cells))
    columns = {name: [cells.get(key) for key in index] for name, cells in by_index.items()}
    return _history(columns, index, str(path), column_map)


def _history(
    columns: dict[str, list[object]],
    positions: Sequence[object],
    where: str,
    column_map: Mapping[str, str] | None,
    source: str | None = None,
) -> History:
    """Identify the tool (unless ``source`` says it), take the epoch column out and
    assemble."""
    identified, reduction = _identify(list(columns))
    epoch_name = epoch_column(columns, column_map, where)
    step_name = next((n for n in columns if n.lower() in _STEP_COLUMNS), None)
    notes: tuple[str, ...] = ()
    zero_based = None
    if epoch_name is not None:
        epochs = columns.pop(epoch_name)
    elif step_name is not None:
        epochs, notes = _epochs_from_steps(columns, columns.pop(step_name))
        zero_based = False
    else:
        epochs = positions
    return history_from_columns(columns, epochs, source=source or identified, where=where,
                                column_map=column_map, loss_reduction=reduction,
                                zero_based=zero_based, notes=notes)


def _epochs_from_steps(
    columns: Mapping[str, Sequence[object]], steps: Sequence[object]
) -> tuple[list[int | None], tuple[str, ...]]:
    """Each row's epoch from its step (``None`` for a row without a whole-number step)."""
    rows, positions = [], []
    for position, cell in enumerate(steps):
        step = parse_cell(cell)
        if step is None or not step.is_integer() or step < 0:
            continue
        metrics = {name: value for name, cells in columns.items()
                   if (value := parse_cell(cells[position])) is not None}
        rows.append(Row(None, int(step), metrics))
        positions.append(position)
    epochs: list[int | None] = [None] * len(steps)
    if not rows:
        return epochs, ()
    found, notes = row_epochs(rows, is_validation)
    for position, epoch in zip(positions, found, strict=True):
        epochs[position] = epoch
    return epochs, notes


def _chart_export_names(columns: list[str]) -> dict[str, str]:
    """Column -> name to read: a W&B chart export's band columns dropped and its one
    run name stripped (``run-7 - train/loss`` -> ``train/loss``); others unchanged."""
    kept = [c for c in columns if not c.endswith(_WANDB_BAND_SUFFIXES)]
    runs = {c.split(_WANDB_RUN_SEPARATOR, 1)[0] for c in kept if _WANDB_RUN_SEPARATOR in c}
    if len(runs) != 1 or len(kept) == len(columns):
        return {c: c for c in dict.fromkeys(columns)}
    return {c: c.split(_WANDB_RUN_SEPARATOR, 1)[-1] for c in dict.fromkeys(kept)}


def _identify(names: list[str]) -> tuple[str, LossReduction | None]:
    """The tool that wrote the table and, where it is fixed, its loss convention."""
    lowered = {name.lower() for name in names}
    if _SCVI_NAMES & lowered:
        return "scvi-tools", "sum"
    if _WANDB_NAMES & lowered:
        return "wandb", None
    if {"epoch", "step"} <= lowered:
        return "lightning", None
    metrics = lowered - {"epoch"}
    if "loss" in metrics and all(n.removeprefix("val_") in metrics for n in metrics):
        return "keras", None
    return "table", None


def _separator(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    for candidate in ("\t", ";"):
        if candidate in header and "," not in header:
            return candidate
    return ","


def _genevae_history(path: Path) -> History:
    """genevae's own history.csv, checked, with its meta cleaned."""
    try:
        history = History.read_csv(path)
    except (ValueError, OverflowError, OSError) as exc:
        raise GenevaeError(f"{path}: cannot read this genevae history.csv: {exc}") from None
    frame = history.frame
    epochs = pd.to_numeric(frame["epoch"], errors="coerce") if "epoch" in frame else None
    if epochs is None or not len(epochs) or not np.all(np.isfinite(epochs)) or not np.all(
        epochs == np.round(epochs)
    ):
        raise GenevaeError(
            f"{path}: a genevae history.csv needs an 'epoch' column with a whole number in "
            "every row; this one has none, blanks or fractions. Re-export it with History.to_csv."
        )
    meta = history.meta
    history.frame["epoch"] = epochs.astype(np.int64)
    history.meta = dataclasses.replace(
        meta,
        loss_reduction=meta.loss_reduction if meta.loss_reduction in _REDUCTIONS else "unknown",
        n_genes=meta.n_genes if isinstance(meta.n_genes, int) else None,
        n_latent=meta.n_latent if isinstance(meta.n_latent, int) else None,
        kl_schedule=meta.kl_schedule if isinstance(meta.kl_schedule, str) else None,
    )
    return history


def _json_columns(document: object) -> dict[str, dict[object, object]]:
    """Column name -> {row index: cell} from any of the JSON shapes read."""
    if isinstance(document, list):
        rows = [row for row in document if isinstance(row, dict)]
        return _rows_to_columns(rows, range(len(rows)))
    if not isinstance(document, dict):
        return {}
    if isinstance(document.get("columns"), list) and isinstance(document.get("data"), list):
        names = [str(name) for name in document["columns"]]
        rows = [dict(zip(names, row, strict=False)) for row in document["data"]
                if isinstance(row, list)]
        index = document.get("index")
        keys = (index if isinstance(index, list) and len(index) == len(rows)
                and all(isinstance(key, _Scalar) for key in index) else range(len(rows)))
        return _rows_to_columns(rows, keys)
    columns: dict[str, dict[object, object]] = {}
    _collect(document, columns, depth=0)
    return columns


def _rows_to_columns(rows: list[dict], keys: Sequence[object]) -> dict[str, dict[object, object]]:
    columns: dict[str, dict[object, object]] = {}
    for key, row in zip(keys, rows, strict=False):
        for name, cell in row.items():
            if isinstance(cell, _Scalar):
                columns.setdefault(str(name), {})[_index_key(key)] = cell
    return columns


def _collect(node: dict, columns: dict[str, dict[object, object]], depth: int) -> None:
    """Lists become positional columns, dicts of scalars indexed ones; dicts of
    containers are descended into (scvi-tools' ``{key: frame.to_dict()}``)."""
    for name, value in node.items():
        if isinstance(value, list):
            columns[str(name)] = {float(i): cell for i, cell in enumerate(value)}
        elif isinstance(value, dict) and value:
            if all(isinstance(cell, _Scalar) for cell in value.values()):
                columns[str(name)] = {_index_key(k): cell for k, cell in value.items()}
            elif depth < _MAX_JSON_DEPTH:
                _collect(value, columns, depth + 1)


def _index_key(key: object) -> object:
    """Row keys as numbers where they are numbers, so "3" and position 3 align."""
    number = parse_cell(key)
    return key if number is None else number
