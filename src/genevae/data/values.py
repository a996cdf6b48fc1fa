"""Value checks: whether a matrix holds counts, and the first NaN, infinite, negative or
non-integer entry, mergeable over chunks of rows so a backed file is checked in one pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genevae.data.io import as_float32
from genevae.data.messages import pluralise
from genevae.errors import GenevaeError

__all__ = [
    "ValueSummary",
    "Offending",
    "summarise_values",
    "merge_values",
    "looks_like_counts",
    "check_values",
    "COUNT_LIKELIHOODS",
    "LOG_NORMALISED_MAX",
]

log = logging.getLogger(__name__)

#: Non-negative, non-integer values below this maximum look log-normalised: log1p of
#: CP10k peaks near ln(1e4) ≈ 9.2, log2(CPM + 1) near log2(1e6) ≈ 20 (genevae choice).
LOG_NORMALISED_MAX = 20.0
#: Likelihoods whose target is the raw counts, so their values must be counts.
COUNT_LIKELIHOODS = ("nb", "zinb")


def _first_offending(matrix, is_bad) -> tuple[int, int, int, float] | None:
    """(count, row, column, value) of entries where ``is_bad`` holds; None if none.

    ``is_bad`` must be False at 0, so a CSR matrix's stored values suffice.
    """
    if sp.issparse(matrix):
        where = np.flatnonzero(is_bad(matrix.data))
        if not len(where):
            return None
        k = where[0]
        row = int(np.searchsorted(matrix.indptr, k, side="right") - 1)
        return len(where), row, int(matrix.indices[k]), float(matrix.data[k])
    where = np.flatnonzero(is_bad(matrix))
    if not len(where):
        return None
    row, column = divmod(int(where[0]), matrix.shape[1])
    return len(where), row, column, float(matrix[row, column])


def _is_not_count(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values) | (values < 0) | (values != np.round(values))


def looks_like_counts(X: np.ndarray | sp.spmatrix) -> bool:
    """Whether every value of ``X`` (dense or sparse) is a finite, non-negative integer."""
    return _first_offending(as_float32(X), _is_not_count) is None


Offending = tuple[int, int, int, float]  # (count, row, column, first value)


@dataclass(frozen=True)
class ValueSummary:
    """What the value checks need of a matrix, mergeable over chunks of rows.

    Attributes
    ----------
    non_finite, negative, fractional
        (count, row, column, value) of the first offending entry in reading order
        (row by row) and the number of such entries; None when there is none.
    minimum, maximum
        Over all entries, implicit zeros of a sparse matrix included.
    """

    non_finite: Offending | None
    negative: Offending | None
    fractional: Offending | None
    minimum: float
    maximum: float

    @property
    def is_counts(self) -> bool:
        return self.non_finite is None and self.negative is None and self.fractional is None

    @property
    def looks_log_normalised(self) -> bool:
        """Non-negative, not all integers, and max below :data:`LOG_NORMALISED_MAX`."""
        return not self.is_counts and self.minimum >= 0 and self.maximum < LOG_NORMALISED_MAX

    def log_normalised_note(self) -> str:
        return (
            f"They look already log-normalised (non-negative, non-integer, max "
            f"{self.maximum:.3g} < {LOG_NORMALISED_MAX:g})."
        )


def summarise_values(matrix, row_offset: int = 0) -> ValueSummary:
    """The :class:`ValueSummary` of ``matrix`` (dense or CSR) whose first row is ``row_offset``."""

    def first(is_bad) -> Offending | None:
        found = _first_offending(matrix, is_bad)
        return None if found is None else (found[0], found[1] + row_offset, found[2], found[3])

    with np.errstate(invalid="ignore"):
        return ValueSummary(
            non_finite=first(lambda v: ~np.isfinite(v)),
            negative=first(lambda v: v < 0),
            fractional=first(lambda v: v != np.round(v)),
            minimum=float(matrix.min()),
            maximum=float(matrix.max()),
        )


def merge_values(first: ValueSummary, later: ValueSummary) -> ValueSummary:
    """The summary of two consecutive row ranges (``first`` above ``later``)."""

    def merged(a: Offending | None, b: Offending | None) -> Offending | None:
        if a is None or b is None:
            return a or b
        return (a[0] + b[0], *a[1:])

    return ValueSummary(
        non_finite=merged(first.non_finite, later.non_finite),
        negative=merged(first.negative, later.negative),
        fractional=merged(first.fractional, later.fractional),
        minimum=min(first.minimum, later.minimum),
        maximum=max(first.maximum, later.maximum),
    )


def check_values(
    values: ValueSummary,
    obs_names: pd.Index,
    var_names: pd.Index,
    likelihood: str,
    strict: bool,
    source: str,
) -> bool:
    """Raise or warn on NaN/inf, negatives and non-integers; return whether values are counts.

    Counts are non-negative and integer-valued.
    """

    def where(found: Offending) -> str:
        _, row, column, value = found
        return f"{value:g} for cell {obs_names[row]!r}, gene {var_names[column]!r}"

    non_finite = values.non_finite
    if non_finite is not None:
        raise GenevaeError(
            f"{source}: found {pluralise(non_finite[0], 'NaN or infinite value')} (first: "
            f"{where(non_finite)}). "
            "Replace them (e.g. with 0 if they mean 'not detected') or drop those cells or "
            "genes before training."
        )
    negative, fractional = values.negative, values.fractional
    is_counts = values.is_counts
    if likelihood not in COUNT_LIKELIHOODS:
        return is_counts
    if negative is not None:
        raise GenevaeError(
            f"{source}: found {pluralise(negative[0], 'negative value')} (first: "
            f"{where(negative)}), but the {likelihood} likelihood models counts. Use --likelihood "
            "gaussian for continuous values, or --layer counts if the file keeps raw counts in "
            "a layer."
        )
    if fractional is not None:
        hint = f" {values.log_normalised_note()}" if values.looks_log_normalised else ""
        message = (
            f"{source}: found {pluralise(fractional[0], 'non-integer value')} (first: "
            f"{where(fractional)}), but the {likelihood} likelihood models raw counts.{hint} Use "
            "--layer counts for raw counts, or --likelihood gaussian."
        )
        if strict:
            raise GenevaeError(message)
        log.warning("%s Continuing because --strict is off.", message)
    return is_counts
