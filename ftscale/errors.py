"""The errors every command reports the same way, and the one guard that reports them.

Exit status: 0 success, 1 a failure of the machine or of a measurement (:class:`SetupError`, a
failed cell), 2 bad input (:class:`UsageError`), 130 interrupted (the benches' engine).
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit status 2, nothing written."""


class SetupError(Exception):
    """The machine or an environment cannot do what was asked (a build, a package, a tool):
    one line on stderr, exit status 1."""


EXIT_FAILURE = 1
EXIT_USAGE = 2


def one_line(exc: BaseException) -> str:
    """The exception's message on one line, runs of spaces made one: a line that ends in punctuation
    is followed by a space, any other by "; "."""
    text = ""
    for line in str(exc).splitlines():
        if part := " ".join(line.split()):
            text += (" " if text[-1:] in tuple(".,:;!?") else "; ") + part if text else part
    return text


def guard(prog: str, body: Callable[[], int]) -> int:
    """``body``'s exit status; a :class:`UsageError` or :class:`SetupError` is one line on stderr
    (``<prog>: error: ...``) and exit status 2 or 1. Anything else propagates."""
    try:
        return body()
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except SetupError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
