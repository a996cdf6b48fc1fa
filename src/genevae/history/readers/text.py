"""Text logs with one line per epoch: the reference format and its relatives.

The reference line (reference document, "Interpreting Training Output")::

    epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531

and what other training loops print instead, all read the same way:

- the epoch is the first ``epoch N`` on the line, in any capitalisation and as
  ``Epoch 1/50``, ``epoch: 3``, ``[Epoch 3]``; lines without one are ignored, and
  epochs are whatever the lines say (a log printed every k epochs has gaps);
- values are ``key=value``, ``key: value`` or ``key value`` with any float format
  (``1e-3``, ``nan``, ``inf``: kept, they are how divergence shows);
- a section label (``train``, ``Train:``, ``val``, ``Val:``, ``Validation``, ``test``,
  ``eval``) applies to the keys after it; keys that name a split themselves
  (``val_loss``) keep theirs; keys without either are training;
- keys are mapped to history columns by :mod:`~genevae.history.readers.columns`
  (``beta=0.3`` and ``kl_weight=`` become ``kl_weight``; ``lr``, ``time`` and other
  fields are ignored);
- progress-bar residue: carriage returns split a line into segments read as
  lines of their own, so the last segment with values wins; ANSI colour codes are
  removed; Windows line endings and blank or garbage lines do no harm;
- an epoch printed twice keeps its last line (a resumed run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.history.readers.assemble import (
    NoHistoryFound,
    history_from_records,
    unreadable_message,
)
from genevae.history.readers.columns import SPLIT_WORDS, classify_name, name_split

__all__ = ["parse_text", "text_history", "decode_log", "log_lines", "scan_metrics"]

_NUMBER = r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|nan|inf(?:inity)?)"
_LABELS = "|".join(sorted(SPLIT_WORDS, key=len, reverse=True))
#: ``key=value`` / ``key: value`` / ``key value``, or a section label.
_TOKEN = re.compile(
    rf"(?<![\w./-])(?P<key>[A-Za-z][\w./-]*)(?:\s*[:=]\s*|\s+)(?P<value>{_NUMBER})(?!\w)"
    rf"|(?<![\w./-])(?P<label>{_LABELS})(?![\w./-])",
    re.IGNORECASE | re.ASCII,
)
_EPOCH = re.compile(
    r"(?<![A-Za-z0-9_])epochs?(?![A-Za-z0-9_])[\s:=#\[]*([0-9]{1,9})(?![0-9])",
    re.IGNORECASE | re.ASCII,
)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_EPOCH_KEYS = frozenset({"epoch", "epochs"})


def parse_text(text: str, source_name: str = "<text>", *,
               column_map: Mapping[str, str] | None = None) -> History:
    """Read a text log with one line per epoch (see the module docstring).

    Parameters
    ----------
    text
        The whole log.
    source_name
        The file or stream, for ``HistoryMeta.path`` and messages.
    column_map
        ``--map`` overrides naming keys as printed (``recon=rec`` or ``val_recon=val/rec``).

    Returns
    -------
    History
        One row per epoch; ``loss_reduction`` guessed by
        :func:`~genevae.history.readers.reduction.infer_loss_reduction`.

    Raises
    ------
    GenevaeError
        When no line holds an epoch with a loss, reconstruction or KL, or two keys
        could be the same quantity.
    """
    try:
        return text_history(text, source_name, column_map)
    except NoHistoryFound as exc:
        raise GenevaeError(unreadable_message(source_name, [str(exc)])) from None


def text_history(text: str, where: str, column_map: Mapping[str, str] | None) -> History:
    """:func:`parse_text`, raising ``NoHistoryFound`` when nothing is found."""
    wanted = {name.strip().lower() for name in (column_map or {}).values()}
    records: dict[int, dict[str, float]] = {}
    for line in log_lines(text):
        epoch = _EPOCH.search(line)
        if epoch is None:
            continue
        metrics = scan_metrics(line)
        if any(_is_metric(name, wanted) for name in metrics):
            records[int(epoch.group(1))] = metrics
    if not records:
        raise NoHistoryFound("No line has an epoch number with a loss, recon or kl value.")
    return history_from_records(records, source="text", where=where, column_map=column_map)


def decode_log(data: bytes, where: str) -> str:
    """A log file's bytes as text: UTF-8 (UTF-16 with a byte-order mark, as Windows
    PowerShell writes), undecodable bytes replaced.

    Raises
    ------
    GenevaeError
        For a binary file (NUL bytes outside UTF-16).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data:
        raise GenevaeError(
            f"{where} is a binary file, not a training log. "
            "genevae reads text logs, CSV/JSON tables and TensorBoard event files."
        )
    return data.decode("utf-8-sig", errors="replace")


def log_lines(text: str) -> Iterator[str]:
    """The log's lines, split at ``\\n``, ``\\r\\n`` and lone ``\\r``, ANSI codes removed."""
    for line in text.splitlines():
        yield _ANSI.sub("", line) if "\x1b" in line else line


def scan_metrics(line: str) -> dict[str, float]:
    """Every ``key=value`` on a line, keys qualified by their section label.

    >>> scan_metrics("epoch 001 | train loss=0.8684 | val loss=0.7531 beta=0.5")
    {'train/loss': 0.8684, 'val/loss': 0.7531, 'val/beta': 0.5}
    """
    label: str | None = None
    metrics: dict[str, float] = {}
    for key, value, section in _TOKEN.findall(line):
        if section:
            label = SPLIT_WORDS[section.lower()]
        elif key.lower() not in _EPOCH_KEYS:
            name = key if label is None or name_split(key) else f"{label}/{key}"
            metrics[name] = float(value)
    return metrics


def _is_metric(name: str, wanted: set[str]) -> bool:
    if classify_name(name) is not None:
        return True
    lowered = name.lower()
    return lowered in wanted or lowered.partition("/")[2] in wanted
