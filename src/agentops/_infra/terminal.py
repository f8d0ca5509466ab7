"""Text for people's terminals: what agents log is untrusted, so control characters are escaped.

An agent (or text it fetched) could put escape sequences in a log line that
move a terminal's cursor, rewrite what was shown, or reorder text with
bidirectional overrides. Everything agentops shows from a log, as a run
echoes it and as ``agentops logs`` reads it, goes through :func:`printable`.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["printable", "printable_event"]

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"  # noqa: PLR2004 - one byte


def printable(text: str) -> str:
    r"""``text`` with control characters written as escapes (``\x1b``)."""
    return _UNPRINTABLE.sub(_escape, text)


def _printable_value(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_value(v) for v in value]
    return value


def printable_event(event: dict[str, Any], *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """A log event ready for a console renderer: every key and text escaped, ``without`` left out.

    ``ts``, ``level`` and ``event`` become text (a renderer formats them as
    such; a hand-written line may hold anything there), ``event`` always;
    ``exception`` and ``stack`` too when present (the renderer joins them as text).
    """
    shown = {
        printable(str(key)): _printable_value(value)
        for key, value in event.items()
        if key not in without
    }
    for key in ("ts", "level", "event", "exception", "stack"):
        if key in shown or key == "event":
            shown[key] = printable(str(shown.get(key, "")))
    return shown
