"""Read any VAE training log into a :class:`~genevae.history.history.History`.

:func:`read_history` is the one entry point (``genevae diagnose LOG``). It finds the
format from the file name and content, or takes it from ``format``:

===============  ============================================================  ============
format           what                                                         module
===============  ============================================================  ============
``text``         a line per epoch or step: the reference format, tqdm, ...    ``text``
``keras``        Keras ``fit()`` console output                               ``keras``
``csv``          genevae history.csv, scvi-tools, Lightning metrics.csv,      ``table``
                 W&B exports, ...
``json``         Keras ``history.history``, scvi-tools ``history_``, JSON     ``table``,
                 lines, ...                                                   ``jsonl``
``tensorboard``  ``events.out.tfevents.*`` files (needs ``tensorboard``)      ``tensorboard``
(auto only)      MLflow run folders (``mlruns/<experiment>/<run>/metrics``)   ``mlflow``
===============  ============================================================  ============

Automatic detection: an MLflow run or its ``metrics/`` folder is read as MLflow; a
``lightning_logs/`` folder through its newest ``version_N`` (:mod:`.folders`); an
event file, or a folder holding one and none of the files below, is TensorBoard; in
a folder, ``history.csv`` (a genevae run), ``metrics.csv`` (Lightning) or
``train.log`` is read; ``.csv``/``.tsv`` and ``.json``/``.jsonl`` files are tables;
any other file is tried as JSON (if it starts with ``{`` or ``[``), text, Keras
output, then CSV (if its first line has a separator; Keras' CSVLogger writes
``training.log``). A Lightning ``hparams.yaml`` or MLflow ``params/`` gives
``n_latent`` where it names it.

The loss convention is the source's where it is fixed (genevae's column,
scvi-tools' per-cell sums) and otherwise guessed by
:func:`~genevae.history.readers.reduction.infer_loss_reduction`; the caller's
``loss_reduction``, ``n_genes`` and ``n_latent`` override what was read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from numbers import Integral
from pathlib import Path

from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, unreadable_message
from genevae.history.readers.folders import LogFolder, resolve_log_file, resolve_log_folder
from genevae.history.readers.keras import keras_history
from genevae.history.readers.mlflow import mlflow_history
from genevae.history.readers.reduction import infer_loss_reduction
from genevae.history.readers.table import csv_history, json_history
from genevae.history.readers.tensorboard import EVENT_FILE_MARK, event_files, tensorboard_history
from genevae.history.readers.text import decode_log, parse_text, text_history
from genevae.runfolder import RunFolder

__all__ = ["read_history", "parse_text", "infer_loss_reduction", "FORMATS"]

#: Values of ``format`` (``--format``).
FORMATS = ("auto", "text", "keras", "csv", "json", "tensorboard")
#: The table PyTorch Lightning's CSVLogger writes in ``lightning_logs/version_N/``.
_LIGHTNING_METRICS = "metrics.csv"
_LOSS_REDUCTIONS = ("sum", "mean", "unknown")
_TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
                   ".ndjson": "json"}

_Reader = Callable[[Path, str, Mapping[str, str] | None], History]
_READERS: dict[str, _Reader] = {
    "text": lambda path, text, column_map: text_history(text, str(path), column_map),
    "keras": lambda path, text, column_map: keras_history(text, str(path), column_map),
    "csv": csv_history,
    "json": json_history,
}


def read_history(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    column_map: Mapping[str, str] | None = None,
    n_latent: int | None = None,
    n_genes: int | None = None,
    loss_reduction: str | None = None,
) -> History:
    """Read a training log of any supported format into a history.

    Parameters
    ----------
    path
        A log file, a table, an event file, or a folder holding one.
    format
        One of :data:`FORMATS`; ``"auto"`` detects it.
    column_map
        ``--map`` overrides, e.g. ``{"recon": "my_col", "val_kl": "kld_val"}``; keys
        ``loss``, ``recon``, ``kl``, ``val_loss``, ``val_recon``, ``val_kl``,
        ``kl_weight``, ``epoch`` (tables only).
    n_latent, n_genes
        Sizes of the latent space and the data, where the log does not say them.
    loss_reduction
        ``"sum"``, ``"mean"`` or ``"unknown"``, overriding what was read or guessed.

    Returns
    -------
    History
        At least one epoch; ``meta.path`` names the file read.

    Raises
    ------
    GenevaeError
        For a missing, binary or unreadable file, an option out of range, an
        ambiguous column, or a log in which no format finds an epoch.
    """
    _check_options(format, loss_reduction, n_latent, n_genes)
    target = Path(path)
    if not target.exists():
        raise GenevaeError(f"{target}: no such file or directory.")
    folder = resolve_log_folder(target) if target.is_dir() else resolve_log_file(target)
    target, format = _resolve(folder, format)
    if format == "mlflow":
        history = _read_folder(mlflow_history, target, column_map)
    elif format == "tensorboard":
        history = _read_folder(tensorboard_history, target, column_map)
    else:
        history = _read_file(target, format, column_map)
    meta = {"notes": folder.notes + history.meta.notes,
            "n_latent": history.meta.n_latent or folder.n_latent}
    overrides = {"loss_reduction": loss_reduction, "n_genes": n_genes, "n_latent": n_latent}
    meta.update({k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(history, meta=dataclasses.replace(history.meta, **meta))


def _check_options(
    format: str, loss_reduction: str | None, n_latent: int | None, n_genes: int | None
) -> None:
    if format not in FORMATS:
        raise GenevaeError(f"--format {format}: use one of {', '.join(FORMATS)}.")
    if loss_reduction is not None and loss_reduction not in _LOSS_REDUCTIONS:
        raise GenevaeError(
            f"--loss-reduction {loss_reduction}: use one of {', '.join(_LOSS_REDUCTIONS)}."
        )
    for name, value in (("n-latent", n_latent), ("n-genes", n_genes)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)
                                  or value < 1):
            raise GenevaeError(f"--{name} {value}: must be a whole number of at least 1.")


def _resolve(folder: LogFolder, format: str) -> tuple[Path, str]:
    """The file or folder to read and its format (``"auto"`` left for content sniffing)."""
    target = folder.path
    if folder.is_mlflow:
        if format != "auto":
            raise GenevaeError(
                f"{target} holds MLflow metric files, which --format {format} does not read. "
                "Leave out --format (MLflow folders are found automatically)."
            )
        return target, "mlflow"
    if target.is_dir():
        if format == "tensorboard":
            return target, format
        candidates = _folder_files(target)
        for candidate in candidates:
            if candidate.is_file():
                return _resolve(LogFolder(candidate), format)
        if format == "auto" and event_files(target):
            return target, "tensorboard"
        raise GenevaeError(
            f"{target} is a folder without a training log: looked for "
            f"{', '.join(c.name for c in candidates)}, TensorBoard event files (*{EVENT_FILE_MARK}*), "
            "Lightning version_N folders and an MLflow metrics/ folder. "
            "Give the log file itself."
        )
    if format == "auto" and EVENT_FILE_MARK in target.name:
        return target, "tensorboard"
    if format == "auto":
        return target, _TABLE_SUFFIXES.get(target.suffix.lower(), "auto")
    return target, format


def _folder_files(folder: Path) -> tuple[Path, ...]:
    """Files read from a folder, in order of preference: a genevae run's history, a
    Lightning ``metrics.csv``, a genevae run's epoch lines."""
    run = RunFolder(folder)
    return (run.history, folder / _LIGHTNING_METRICS, run.log)


def _read_folder(
    reader: Callable[[Path, Mapping[str, str] | None], History],
    target: Path,
    column_map: Mapping[str, str] | None,
) -> History:
    try:
        return reader(target, column_map)
    except NoHistoryFound as exc:
        raise GenevaeError(unreadable_message(str(target), [str(exc)])) from None


def _read_file(target: Path, format: str, column_map: Mapping[str, str] | None) -> History:
    """Try the readers ``format`` allows, in turn, on the file's text."""
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise GenevaeError(f"{target}: cannot read the file ({exc.strerror}).") from None
    text = decode_log(data, str(target))
    if format != "auto":
        names = [format]
    else:
        names = ["text", "keras"]
        if text.lstrip().startswith(("{", "[")):
            names.insert(0, "json")  # before text, which reads a printed dict too
        header = next((line for line in text.splitlines() if line.strip()), "")
        if any(separator in header for separator in ",\t;"):
            names.append("csv")
    details = []
    for name in names:
        try:
            return _READERS[name](target, text, column_map)
        except NoHistoryFound as exc:
            details.append(f"As {name}: {exc}")
    raise GenevaeError(unreadable_message(str(target), details))
