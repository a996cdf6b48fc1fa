"""TensorBoard event files (``events.out.tfevents.*``), through TensorBoard's own reader.

``tensorboard`` is an optional dependency, imported only here and only when an event
file is read. Scalars are read with
``event_accumulator.EventAccumulator(path, size_guidance).Reload()``: PyTorch's
``SummaryWriter`` (and so Lightning) stores them as ``Scalars(tag)``; TensorFlow 2
(Keras' ``TensorBoard`` callback) as scalar ``Tensors(tag)`` of the ``scalars`` plugin.

Tags are named by the folder below the given path that holds their file, so Keras'
``train/`` and ``validation/`` folders give ``train/epoch_loss`` and
``validation/epoch_loss``; names map as everywhere else
(:mod:`~genevae.history.readers.columns`). The epoch of a value is read from an
``epoch`` scalar where one is logged (Lightning logs it at every step), else the
step is taken as the epoch (Keras' ``epoch_*`` tags, ``add_scalar(tag, value,
epoch)``). A run that logs only per-step values without an ``epoch`` tag therefore
gets one "epoch" per step.

Tested on Lightning's own TensorBoardLogger output
(``tests/fixtures/logs/format_lightning_logs/version_0``, written by
``tests/fixtures/make_format_logs.py``) and, in :func:`scalars_to_columns`, on
hand-made events. MLflow's metric files are turned into rows the same way
(:mod:`~genevae.history.readers.mlflow`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, history_from_columns

__all__ = ["tensorboard_history", "scalars_to_columns", "event_files", "EVENT_FILE_MARK"]

#: Every TensorBoard event file name contains this.
EVENT_FILE_MARK = "tfevents"
_SCALARS_PLUGIN = "scalars"


def event_files(path: Path) -> list[Path]:
    """The event files at ``path`` (the file itself, or any below the folder)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob(f"*{EVENT_FILE_MARK}*") if p.is_file())


def tensorboard_history(path: Path, column_map: Mapping[str, str] | None) -> History:
    """Read the scalars of the event file(s) at ``path`` (a file or a folder).

    Raises
    ------
    GenevaeError
        When ``tensorboard`` is not installed or a file cannot be read.
    NoHistoryFound
        When no scalar is a loss, reconstruction or KL.
    """
    accumulator_module = _event_accumulator()
    files = event_files(path)
    if not files:
        raise NoHistoryFound(f"No TensorBoard event file ('*{EVENT_FILE_MARK}*') found.")
    root = path if path.is_dir() else path.parent
    scalars: dict[str, list[tuple[int, float]]] = {}
    for folder in sorted({f.parent for f in files}):
        prefix = folder.relative_to(root).as_posix()
        source = files[0] if path.is_file() else folder
        for tag, events in _read_scalars(accumulator_module, source).items():
            scalars[tag if prefix == "." else f"{prefix}/{tag}"] = events
    columns, epochs = scalars_to_columns(scalars)
    return history_from_columns(columns, epochs, source="tensorboard", where=str(path),
                                column_map=column_map)


def scalars_to_columns(
    scalars: Mapping[str, Sequence[tuple[int, float]]],
) -> tuple[dict[str, list[float | None]], list[int]]:
    """One row per epoch from ``{tag: [(step, value), ...]}``.

    A tag whose last name part is ``epoch`` gives the epoch of each step (the epoch
    logged at the greatest step not after it); without one the step is the epoch.
    Each tag keeps its last value per epoch, by step.

    Returns
    -------
    columns, epochs
        Tag -> value per row (``None`` where the tag has none), and the row epochs
        as logged (0-based for Lightning and Keras; shifted later).
    """
    epoch_tags = [tag for tag in scalars if tag.rsplit("/", 1)[-1].lower() == "epoch"]
    epoch_of = _epoch_lookup(scalars[epoch_tags[0]]) if epoch_tags else None
    by_tag: dict[str, dict[int, float]] = {}
    for tag, events in scalars.items():
        if tag in epoch_tags:
            continue
        values: dict[int, float] = {}
        for step, value in sorted(events, key=lambda event: event[0]):
            epoch = step if epoch_of is None else epoch_of(step)
            if epoch is not None:
                values[epoch] = float(value)
        by_tag[tag] = values
    epochs = sorted({epoch for values in by_tag.values() for epoch in values})
    columns = {tag: [values.get(epoch) for epoch in epochs] for tag, values in by_tag.items()}
    return columns, epochs


def _epoch_lookup(events: Sequence[tuple[int, float]]) -> Callable[[int], int | None]:
    """step -> epoch from an ``epoch`` scalar, ``None`` before its first value."""
    ordered = sorted((e for e in events if np.isfinite(e[1])), key=lambda event: event[0])
    steps = np.array([step for step, _ in ordered])
    epochs = [int(round(value)) for _, value in ordered]

    def epoch_of(step: int) -> int | None:
        at = int(np.searchsorted(steps, step, side="right")) - 1
        return epochs[at] if at >= 0 else None

    return epoch_of


def _event_accumulator() -> ModuleType:
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        raise GenevaeError(
            "Reading TensorBoard event files needs the tensorboard package, which is "
            "not installed: pip install tensorboard"
        ) from None
    return event_accumulator


def _read_scalars(module: ModuleType, source: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of one event file or folder: ``{tag: [(step, value)]}``."""
    accumulator = module.EventAccumulator(
        str(source), size_guidance={module.SCALARS: 0, module.TENSORS: 0}
    )
    try:
        accumulator.Reload()
    except Exception as exc:  # whatever TensorBoard raises for a corrupt or foreign file
        raise GenevaeError(f"{source}: TensorBoard could not read this event file: {exc}") from exc
    tags = accumulator.Tags()
    scalars = {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in tags.get(module.SCALARS, [])
    }
    from tensorboard.util import tensor_util

    for tag in tags.get(module.TENSORS, []):
        metadata = accumulator.summary_metadata.get(tag)
        if metadata is None or metadata.plugin_data.plugin_name != _SCALARS_PLUGIN:
            continue
        scalars[tag] = [
            (event.step, float(tensor_util.make_ndarray(event.tensor_proto).item()))
            for event in accumulator.Tensors(tag)
        ]
    return scalars
