"""Keras ``model.fit()`` console output.

Keras prints a header line per epoch and the epoch's metrics on the progress line
below it::

    Epoch 3/40
    70/70 [==============================] - 3s 12ms/step - loss: 512.3 - reconstruction_loss: 498.1 - kl_loss: 14.2 - val_loss: 530.8

(Keras 3 draws the bar with ``━`` and may colour it.) With ``verbose=1`` the bar is
redrawn after carriage returns, each version holding the running means so far; the
values read last before the next header win, so the epoch gets its final means and
the validation metrics. Names map as everywhere else
(:mod:`~genevae.history.readers.columns`): ``reconstruction_loss`` to recon,
``kl_loss`` to kl, ``val_*`` to validation; timing fields are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, history_from_records
from genevae.history.readers.text import log_lines, scan_metrics

__all__ = ["keras_history"]

_HEADER = re.compile(r"^\s*epoch\s+([0-9]{1,9})\s*/\s*[0-9]+\s*$", re.IGNORECASE | re.ASCII)


def keras_history(text: str, where: str, column_map: Mapping[str, str] | None) -> History:
    """Read Keras ``fit()`` output (see the module docstring).

    Parameters
    ----------
    text
        The captured console output.
    where
        The file, for ``HistoryMeta.path`` and messages.
    column_map
        ``--map`` overrides naming Keras metric names.

    Raises
    ------
    NoHistoryFound
        When there is no ``Epoch N/M`` header followed by metrics.
    GenevaeError
        For an ambiguous name or a bad ``--map``.
    """
    records: dict[int, dict[str, float]] = {}
    epoch: int | None = None
    for line in log_lines(text):
        header = _HEADER.match(line)
        if header:
            epoch = int(header.group(1))
            records[epoch] = {}  # a second fit() restarting at epoch 1 replaces the first
        elif epoch is not None:
            records[epoch].update(scan_metrics(line))
    records = {e: metrics for e, metrics in records.items() if metrics}
    if not records:
        raise NoHistoryFound("No 'Epoch N/M' header line followed by '- loss: ...' metrics.")
    return history_from_records(list(records.items()), source="keras", where=where,
                                column_map=column_map)
