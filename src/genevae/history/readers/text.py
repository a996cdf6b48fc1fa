"""Text logs: one line per epoch or per step, the reference format and its relatives.

The reference line (reference document, "Interpreting Training Output")::

    epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531

and what other training loops print instead, all read the same way:

- a line is read when it holds a counter and a loss, reconstruction or KL value;
  a line without a counter that holds validation values only (``====> Test set
  loss: 127.35`` after an epoch summary) belongs to the epoch of the line before it;
  other lines are ignored;
- the epoch counter is the first ``epoch N`` on the line, in any capitalisation and
  as ``Epoch 1/50``, ``epoch: 3``, ``[Epoch 3]``, ``ep 12``, ``ep: 12``,
  ``'epoch': 3``, or ``e 3`` at the start of the line; a fractional epoch
  (``'epoch': 0.27``) is not a counter. Epochs are whatever the lines say (a log
  printed every k epochs has gaps);
- the step counter is ``step 1200``, ``Step [100/3600]``, ``it 500``, ``iter 500``,
  ``iteration 500`` or ``global_step=1200``; how per-step lines become epochs is
  :func:`~genevae.history.readers.steps.row_epochs`' rule (several lines of one
  epoch: each column keeps the epoch's last value). A line with an epoch but no
  metric (``Epoch 3/50`` above its step lines) sets the epoch of the lines below;
- values are ``key=value``, ``key: value``, ``key value``, ``key[value]``,
  ``key(value)``, ``'key': value`` (a printed dict, also ``tensor(0.5)``) with any
  float format (``1e-3``, ``nan``, ``inf``: kept, they are how divergence shows).
  A number followed by a letter, ``%``, ``/N`` or ``:N`` is not a value, so
  progress bars (``36/36``, ``25.1it/s``, ``00:01``, ``100%``) and units
  (``3.2s``) give none, and tqdm's postfix (``[00:01<00:00, 25.1it/s, loss=512,
  kl=3.2]``) gives its ``key=value`` pairs;
- a section label (``train``, ``Train:``, ``val``, ``Val:``, ``Validation``, ``test``,
  ``eval``) applies to the keys after it; keys that name a split themselves
  (``val_loss``) keep theirs; keys without either are training;
- keys are mapped to history columns by :mod:`~genevae.history.readers.columns`
  (``beta=0.3`` and ``kl_weight=`` become ``kl_weight``; ``lr``, ``time`` and other
  words that are not metric names are ignored, whatever number follows them);
- progress-bar residue: carriage returns split a line into segments read as
  lines of their own, so the last segment with values wins; ANSI colour codes are
  removed; Windows line endings and blank or garbage lines do no harm;
- an epoch printed twice keeps its last values (a resumed run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from genevae.errors import GenevaeError
from genevae.history.history import History
from genevae.history.readers.assemble import NoHistoryFound, unreadable_message
from genevae.history.readers.columns import SPLIT_WORDS, classify_name, name_split
from genevae.history.readers.steps import Row, has_metric, history_from_rows, mapped_names

__all__ = ["parse_text", "text_history", "decode_log", "log_lines", "scan_metrics",
           "COUNTER_NAMES"]

_NUMBER = r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|nan|inf(?:inity)?)"
#: After a value: not a letter, ``.x``, ``%``, ``/N`` or ``:N`` (``3.2s``, ``36/36``, ``00:01``).
_VALUE_END = r"(?!\w|\.\w|%|/[0-9]|:[0-9])"
#: After a counter: not a fraction (``'epoch': 0.27`` is a position within an epoch).
_COUNTER_END = r"(?![0-9]|\.[0-9])"
_LABELS = "|".join(sorted(SPLIT_WORDS, key=len, reverse=True))
#: ``key=value`` / ``key: value`` / ``key value`` / ``key[value]`` / ``'key': value``,
#: or a section label.
_TOKEN = re.compile(
    rf"(?<![\w./-])(?P<key>[A-Za-z][\w./-]*)['\"]?(?:\s*[:=\[(]\s*|\s+)"
    rf"(?:tensor\(|np\.float(?:32|64)\()?(?P<value>{_NUMBER}){_VALUE_END}"
    rf"|(?<![\w./-])(?P<label>{_LABELS})(?![\w./-])",
    re.IGNORECASE | re.ASCII,
)
_EPOCH = re.compile(
    rf"(?<![A-Za-z0-9_])(?P<word>epochs?|ep)['\"]?[\s:=#\[]*(?P<n>[0-9]{{1,9}}){_COUNTER_END}"
    rf"|^[\s\[(]*(?P<short>e)[\s:=]+(?P<n_short>[0-9]{{1,9}}){_COUNTER_END}",
    re.IGNORECASE | re.ASCII,
)
_STEP = re.compile(
    r"(?<![A-Za-z0-9_])(?:global_step|steps?|iter(?:ation)?s?|it)['\"]?[\s:=#\[]*"
    rf"(?P<n>[0-9]{{1,12}}){_COUNTER_END}",
    re.IGNORECASE | re.ASCII,
)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
#: Counters that, alone on a line, head the step lines below it (``epochs: 30`` in a
#: printed config does not).
_HEADER_WORDS = frozenset({"epoch", "ep"})
#: Names of epoch and step counters: never metrics.
COUNTER_NAMES = frozenset({
    "epoch", "epochs", "ep", "e", "step", "steps", "global_step", "it", "iter", "iters",
    "iteration", "iterations",
})


def parse_text(text: str, source_name: str = "<text>", *,
               column_map: Mapping[str, str] | None = None) -> History:
    """Read a text log with one line per epoch or per step (see the module docstring).

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
        When no line holds an epoch or step with a loss, reconstruction or KL, or
        two keys could be the same quantity.
    """
    try:
        return text_history(text, source_name, column_map)
    except NoHistoryFound as exc:
        raise GenevaeError(unreadable_message(source_name, [str(exc)])) from None


def text_history(text: str, where: str, column_map: Mapping[str, str] | None) -> History:
    """:func:`parse_text`, raising ``NoHistoryFound`` when nothing is found."""
    mapped = mapped_names(column_map)
    rows: list[Row] = []
    header_epoch: int | None = None
    for line in log_lines(text):
        epoch_match, step_match = _EPOCH.search(line), _STEP.search(line)
        if epoch_match is None and step_match is None:
            last_epoch = rows[-1].epoch if rows else None
            if last_epoch is not None and _validation_only(scan_metrics(line), mapped):
                rows.append(Row(last_epoch, None, scan_metrics(line)))
            continue
        epoch = None if epoch_match is None else int(epoch_match["n"] or epoch_match["n_short"])
        step = None if step_match is None else int(step_match["n"])
        metrics = scan_metrics(line)
        if has_metric(metrics, mapped):
            rows.append(Row(header_epoch if epoch is None else epoch, step, metrics))
        elif step is None and epoch_match is not None and (
            (epoch_match["word"] or "").lower() in _HEADER_WORDS
        ):
            header_epoch = epoch
    return history_from_rows(rows, source="text", where=where, column_map=column_map,
                             zero_based=False)


def _validation_only(metrics: Mapping[str, float], mapped: frozenset[str]) -> bool:
    """Whether a line without a counter holds validation values and nothing else, as
    the epoch summary's companion does (``====> Test set loss: 127.35``)."""
    return has_metric(metrics, mapped) and all(
        (match := classify_name(name)) is not None and match.column.startswith("val_")
        for name in metrics
    )


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
    """Every ``key=value`` on a line, keys qualified by their section label; epoch
    and step counters left out.

    >>> scan_metrics("epoch 001 | train loss=0.8684 | val loss=0.7531 beta=0.5")
    {'train/loss': 0.8684, 'val/loss': 0.7531, 'val/beta': 0.5}
    """
    label: str | None = None
    metrics: dict[str, float] = {}
    for key, value, section in _TOKEN.findall(line):
        if section:
            label = SPLIT_WORDS[section.lower()]
        elif key.lower() not in COUNTER_NAMES:
            name = key if label is None or name_split(key) else f"{label}/{key}"
            metrics[name] = float(value)
    return metrics
