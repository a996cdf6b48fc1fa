"""The one exception type for user mistakes.

A :class:`GenevaeError` carries a message written for the user: it names the file,
column, row or value at fault and says how to fix it. The CLI prints the message
and exits with status 2, without a traceback unless ``--debug`` is given. Anything
else that escapes is a bug in genevae and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["GenevaeError", "EXIT_USER_ERROR", "EXIT_VERDICT"]

#: A user mistake: bad input, option or file.
EXIT_USER_ERROR = 2
#: The run or log was judged bad: training diverged or stopped, or ``--fail-on`` matched.
EXIT_VERDICT = 1


class GenevaeError(Exception):
    """A problem with the user's input, options or files, explained in the message."""
