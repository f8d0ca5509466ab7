"""The last lines one run wrote to its agent's log: what a failure's ping carries."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LINES", "READ_BYTES", "run_lines"]

LINES = 50
"""The most lines of a run's log a failure's ping carries (its last)."""

READ_BYTES = 64 * 1024
"""How much of the end of the log is read to find them: a run's end is near the file's end."""


def run_lines(path: Path, run_id: str) -> tuple[str, ...]:
    """The last :data:`LINES` lines of ``path`` that ``run_id`` wrote, as written (JSON).

    Only the log's last :data:`READ_BYTES` are read; a log that cannot be
    read gives none. The lines were redacted when they were written.
    """
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - READ_BYTES))
            data = log.read(READ_BYTES)
    except OSError:
        return ()
    lines = data.splitlines()
    if size > READ_BYTES:
        lines = lines[1:]  # the first is cut: not a line to show
    found = [line.decode(errors="replace") for line in lines if _written_by(line, run_id)]
    return tuple(found[-LINES:])


def _written_by(line: bytes, run_id: str) -> bool:
    if run_id.encode() not in line:  # cheap: most lines of other runs go here
        return False
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("run_id") == run_id
