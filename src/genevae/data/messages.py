"""How names and counts read in genevae's error and log messages."""

from __future__ import annotations

__all__ = ["shown_names", "pluralise", "N_NAMES_SHOWN"]

#: How many offending names an error message lists.
N_NAMES_SHOWN = 5


def shown_names(names) -> str:
    """The first :data:`N_NAMES_SHOWN` names, quoted, for an error message."""
    names = [str(name) for name in names]
    more = ", ..." if len(names) > N_NAMES_SHOWN else ""
    return ", ".join(repr(name) for name in names[:N_NAMES_SHOWN]) + more


def pluralise(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun, plural unless ``n == 1``: ``"1 cell"``, ``"3 cells"``."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
