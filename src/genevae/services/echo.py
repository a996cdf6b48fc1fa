"""Where a command's progress lines go: printed at once, collected, or dropped."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Echo", "print_line", "silent"]

#: Receives one line of a command's output.
Echo = Callable[[str], None]


def print_line(line: str) -> None:
    """Print ``line`` and flush, so progress shows as it happens."""
    print(line, flush=True)


def silent(line: str) -> None:
    """The echo of ranks other than 0: only rank 0 prints."""
