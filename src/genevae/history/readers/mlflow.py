"""MLflow run folders: ``mlruns/<experiment_id>/<run_id>/metrics/<name>``.

MLflow's file store keeps one file per metric, one line per logged value::

    1718000000000 1734.7 12        # timestamp (ms), value, step

A metric name with ``/`` is a path below ``metrics/`` (``metrics/train/loss`` is
``train/loss``); names map as everywhere else
(:mod:`~genevae.history.readers.columns`). Steps become epochs as TensorBoard's do
(:func:`~genevae.history.readers.tensorboard.scalars_to_columns`): by an ``epoch``
metric where one is logged (Lightning's MLFlowLogger logs it), else the step is the
epoch (``mlflow.log_metric(name, value, step=epoch)``), which a note says. Lines of
two fields (no step, older MLflow) take their position as the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, history_from_columns, parse_cell
from genevae.history.readers.tensorboard import scalars_to_columns

__all__ = ["mlflow_history"]

_EPOCH_METRIC = "epoch"


def mlflow_history(metrics_folder: Path, column_map: Mapping[str, str] | None) -> History:
    """Read the metric files below an MLflow run's ``metrics/`` folder.

    Raises
    ------
    NoHistoryFound
        When the folder has no metric file or none is a loss, reconstruction or KL.
    GenevaeError
        For a metric file that is not ``timestamp value step`` lines, an ambiguous
        name or a bad ``--map``.
    """
    files = sorted(p for p in metrics_folder.rglob("*") if p.is_file())
    if not files:
        raise NoHistoryFound(f"No metric file below {metrics_folder}.")
    scalars = {file.relative_to(metrics_folder).as_posix(): _read_metric(file) for file in files}
    columns, epochs = scalars_to_columns(scalars)
    notes: tuple[str, ...] = ()
    if not any(name.rsplit("/", 1)[-1].lower() == _EPOCH_METRIC for name in scalars):
        notes = ("No 'epoch' metric: each logged step is taken as one epoch.",)
    return history_from_columns(columns, epochs, source="mlflow", where=str(metrics_folder),
                                column_map=column_map, notes=notes)


def _read_metric(file: Path) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one metric file."""
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise GenevaeError(f"{file}: cannot read the metric file ({exc.strerror}).") from None
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        value = parse_cell(fields[1]) if len(fields) in (2, 3) else None
        step = parse_cell(fields[2]) if len(fields) == 3 else float(number - 1)
        if value is None or step is None or not step.is_integer():
            raise GenevaeError(
                f"{file}, line {number}: expected 'timestamp value step' (an MLflow metric "
                f"file), found {line.strip()[:80]!r}. Give the MLflow run folder "
                "(mlruns/<experiment_id>/<run_id>) or its metrics/ folder, nothing inside it."
            )
        events.append((int(step), value))
    return events
