"""Turn the metric columns a reader found into a :class:`History`, or say why not.

Every reader ends here with plain columns of cells (one list per source name,
``None`` where a row has no value) and one epoch cell per row. This module maps the
names (:mod:`~genevae.history.readers.columns`), keeps one value per epoch, adds
scvi-tools' global KL to the local one, and fills the :class:`HistoryMeta`.

One value per epoch: the last value present in that epoch's rows. Lightning's
CSVLogger writes training and validation metrics on separate rows, so "present"
means the cell holds a number (``nan`` and ``inf`` count; an empty cell does not).
For metrics logged only per step this is the epoch's last step rather than a mean
of its steps: under a per-step KL warm-up β changes within an epoch, and the last
step is the one whose β the epoch-end ``kl_weight`` reports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from genevae.errors import GenevaeError
from genevae.history.history import SPLITS, History, HistoryMeta, LossReduction
from genevae.history.readers.columns import MAP_KEYS, kl_global_column, resolve_columns
from genevae.history.readers.reduction import infer_loss_reduction

__all__ = [
    "NoHistoryFound",
    "MAX_EPOCH",
    "parse_cell",
    "history_from_columns",
    "history_from_records",
    "unreadable_message",
]

#: Epoch numbers above this are not epochs (a step counter or garbage).
MAX_EPOCH = 10_000_000  # genevae choice: far beyond any training run
_QUANTITIES = ("loss", "recon", "kl")
_CURVE_COLUMNS = tuple(f"{split}_{q}" for split in SPLITS for q in _QUANTITIES)


class NoHistoryFound(GenevaeError):
    """A reader found no epoch in its input; automatic detection tries the next one."""


def parse_cell(cell: object) -> float | None:
    """A cell as a float (``nan``/``inf`` included), or ``None`` when it holds no number."""
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, float):
        return cell
    if isinstance(cell, (int, np.integer, np.floating)):
        try:
            return float(cell)
        except OverflowError:  # an integer beyond float range
            return math.inf if cell > 0 else -math.inf
    if isinstance(cell, str):
        try:
            return float(cell)
        except ValueError:
            return None
    return None


def history_from_columns(
    columns: Mapping[str, Sequence[object]],
    epochs: Sequence[object],
    *,
    source: str,
    where: str,
    column_map: Mapping[str, str] | None = None,
    loss_reduction: LossReduction | None = None,
    zero_based: bool | None = None,
    notes: tuple[str, ...] = (),
) -> History:
    """Build a history from a reader's columns.

    Parameters
    ----------
    columns
        Source name -> cells, each of length ``len(epochs)``; ``None`` = no value.
    epochs
        Epoch number of each row (cells; rows without a whole number are dropped).
    source, where
        ``HistoryMeta.source`` and the file (``HistoryMeta.path``, messages).
    column_map
        ``--map`` overrides (see :func:`~genevae.history.readers.columns.resolve_columns`).
    loss_reduction
        The source's known convention; ``None`` infers it with
        :func:`~genevae.history.readers.reduction.infer_loss_reduction`.
    zero_based
        Whether the source counts epochs from 0 (shifted to History's 1-based
        numbers); ``None`` decides by whether the first epoch is 0.
    notes
        ``HistoryMeta.notes``: what the reader decided (a Lightning version, steps
        taken as epochs).

    Raises
    ------
    NoHistoryFound
        When no loss, reconstruction or KL value with an epoch is found.
    GenevaeError
        For an ambiguous name or a bad ``--map`` (from ``resolve_columns``).
    """
    mapping = resolve_columns(columns, column_map, where)
    return _assemble({column: columns[name] for column, name in mapping.items()}, epochs,
                     found=list(columns), source=source, where=where,
                     loss_reduction=loss_reduction, zero_based=zero_based, notes=notes)


def history_from_records(
    records: Sequence[tuple[int, Mapping[str, float]]],
    *,
    source: str,
    where: str,
    column_map: Mapping[str, str] | None = None,
    zero_based: bool | None = False,
    notes: tuple[str, ...] = (),
) -> History:
    """A history from a line reader's ``(epoch, {name: value})`` rows, in log order.

    Names are resolved line by line: lines may call one quantity by different
    names (a per-batch ``Loss`` and an epoch summary's ``Average loss``). An epoch
    may have several rows (per-step lines, a separate validation line, a resumed
    run's repeat); each column keeps the epoch's last value. Only two names on one
    line compete. ``zero_based`` and ``notes`` are as in
    :func:`history_from_columns`; the default keeps epochs as printed.
    """
    found = list(dict.fromkeys(name for _, metrics in records for name in metrics))
    mappings: dict[frozenset[str], dict[str, str]] = {}
    rows: list[dict[str, float]] = []
    for _, metrics in records:
        names = frozenset(metrics)
        if names not in mappings:
            mappings[names] = resolve_columns(metrics, column_map, where, strict=False)
        rows.append({column: metrics[name] for column, name in mappings[names].items()})
    used = {column for mapping in mappings.values() for column in mapping}
    for key, name in (column_map or {}).items():
        if key != "epoch" and MAP_KEYS[key] not in used:
            shown = ", ".join(repr(n) for n in found[:30]) or "none"
            raise GenevaeError(f"--map {key}={name}: {where} has no key {name!r}. Found: {shown}.")
    columns = {column: [row.get(column) for row in rows]
               for column in dict.fromkeys(c for row in rows for c in row)}
    return _assemble(columns, [epoch for epoch, _ in records], found=found, source=source,
                     where=where, zero_based=zero_based, notes=notes)


def _assemble(
    columns: Mapping[str, Sequence[object]],
    epochs: Sequence[object],
    *,
    found: list[str],
    source: str,
    where: str,
    loss_reduction: LossReduction | None = None,
    zero_based: bool | None = None,
    notes: tuple[str, ...] = (),
) -> History:
    """The history of cells already named by history column (``found``: all source names)."""
    epoch_values = _parse_cells(epochs)[0]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(epoch_values) & (epoch_values >= 0) & (epoch_values <= MAX_EPOCH)
        valid &= epoch_values == np.round(epoch_values)
    series: dict[str, pd.Series] = {}
    for column, cells in columns.items():
        values, present = _parse_cells(cells)
        keep = valid & present
        by_epoch = pd.Series(values[keep], index=epoch_values[keep].astype(np.int64))
        by_epoch = by_epoch[~by_epoch.index.duplicated(keep="last")]
        if len(by_epoch):
            series[column] = by_epoch
    curves = [c for c in series if c != "kl_weight"]  # a row needs a loss, recon or KL
    if not curves:
        raise NoHistoryFound(_nothing_mapped(found))
    rows = sorted(set().union(*(series[c].index for c in curves)))
    frame = _add_global_kl(pd.DataFrame(series, dtype=float).reindex(rows))
    if zero_based is None:
        zero_based = bool(frame.index.min() == 0)
    epoch = frame.index.to_numpy(dtype=np.int64) + (1 if zero_based else 0)
    frame = frame[_ordered(frame.columns)].reset_index(drop=True)
    frame.insert(0, "epoch", epoch)
    n_dims = sum(1 for c in frame.columns if c.startswith("train_kl_dim_"))
    history = History(frame=frame, meta=HistoryMeta(source, path=where, n_latent=n_dims or None,
                                                    notes=notes))
    reduction = loss_reduction or infer_loss_reduction(history)
    history.meta = dataclasses.replace(history.meta, loss_reduction=reduction)
    return history


def unreadable_message(where: str, details: Iterable[str] = ()) -> str:
    """The message for a log in which no reader found an epoch."""
    lines = [f"{where}: no training history found."]
    lines += [f"  {detail}" for detail in details]
    lines += [
        "genevae reads:",
        "  - text logs with one line per epoch or step, like",
        "      epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531",
        "      ep 12 train_loss 1734.7 kl 4.4 val_loss 1790.3",
        "    (an epoch or step counter: 'Epoch 1/50', '[Epoch 3]', 'ep: 12', 'step 1200',",
        "    'iter 500', 'global_step=...'; values as key=value, 'key: value', 'key value',",
        "    loss[0.5], printed dicts {'loss': 0.5}, tqdm postfixes [..., loss=512, kl=3.2]);",
        "  - Keras fit() output ('Epoch 3/40' then '... - loss: ... - val_loss: ...');",
        "  - JSON lines, one object a line with an 'epoch' or 'step' key;",
        "  - CSV or JSON tables: genevae's history.csv, scvi-tools model.history_,",
        "    Lightning's metrics.csv, Keras history.history, W&B run-history and chart",
        "    CSV exports;",
        "  - Lightning log folders (lightning_logs/ or lightning_logs/version_N/);",
        "  - MLflow run folders (mlruns/<experiment_id>/<run_id>/ or its metrics/);",
        "  - TensorBoard event files (events.out.tfevents.*, needs `pip install tensorboard`).",
        "Choose the format with --format and name columns with --map recon=COLUMN.",
    ]
    return "\n".join(lines)


def _parse_cells(cells: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Values (NaN where missing) and presence of each cell, shape (n_rows,) each."""
    present = np.fromiter((cell is not None for cell in cells), dtype=bool, count=len(cells))
    if all(type(cell) is float or cell is None for cell in cells):  # text readers: fast path
        return np.array(cells, dtype=float), present
    parsed = [parse_cell(cell) for cell in cells]
    present = np.fromiter((v is not None for v in parsed), dtype=bool, count=len(parsed))
    values = np.fromiter(
        (math.nan if v is None else v for v in parsed), dtype=float, count=len(parsed)
    )
    return values, present


def _add_global_kl(frame: pd.DataFrame) -> pd.DataFrame:
    """``kl = kl_local + kl_global`` (scvi-tools), the global part only where logged."""
    for split in SPLITS:
        global_kl, kl = kl_global_column(split), f"{split}_kl"
        if global_kl not in frame:
            continue
        if kl in frame:
            frame[kl] = frame[kl] + frame[global_kl].fillna(0.0)
        else:
            frame[kl] = frame[global_kl]
        frame = frame.drop(columns=global_kl)
    return frame


def _ordered(columns: Iterable[str]) -> list[str]:
    present = list(columns)
    first = [c for c in ("kl_weight", *_CURVE_COLUMNS) if c in present]
    return first + sorted(c for c in present if c not in first)


def _nothing_mapped(names: list[str]) -> str:
    if not names:
        return "No metric names found."
    shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    return (
        f"Found {shown}, but none looks like a loss, reconstruction or KL with an epoch "
        "(name one with --map recon=COLUMN)."
    )
