"""The real stderr: where a line for the operator goes, also while a run's output is logged.

While a run's output is captured (:mod:`agentops.run.capture`), ``sys.stderr``
and even file descriptor 2 lead into the log. A capture registers here how to
reach the stream that was there before, so the log sink and the CLI's last
line can still reach a person without knowing about captures.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["real_stderr", "register", "unregister"]

_SOURCES: list[Callable[[], TextIO | None]] = []
"""How each capture in place reaches the stream it replaced, oldest first."""


def register(source: Callable[[], TextIO | None]) -> None:
    """A capture is in place: ``source()`` gives the stream it replaced (None: none)."""
    _SOURCES.append(source)


def unregister(source: Callable[[], TextIO | None]) -> None:
    """The capture is gone: ``sys.stderr`` is real again (as far as it knows)."""
    if source in _SOURCES:
        _SOURCES.remove(source)


def real_stderr() -> TextIO:
    """The stream for a line meant for the operator."""
    for source in _SOURCES:
        stream = source()
        if stream is not None:
            return stream
    return sys.stderr
