"""The user's crontab, with a marked block of agentops lines for one home.

``agentops cron --install`` keeps, in the crontab of the user running it, one
block per home between two marker lines::

    # >>> agentops /srv/agentops >>>
    ...the lines `agentops cron` prints...
    # <<< agentops /srv/agentops <<<

Every line outside the block stays byte for byte as it was. The crontab is
read with ``crontab -l`` and written with ``crontab FILE`` (never by a pipe
into ``crontab -``: a failure upstream would install an empty crontab), and
only when it changes, so installing twice changes nothing.

:meth:`Crontab.environment` is what cron gives the block's runs: its own
few variables, the crontab's ``NAME=value`` lines above the block, and the
``PATH`` each line sets. ``agentops check`` judges scheduled agents in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from typing import TYPE_CHECKING

from agentops.errors import ConfigError
from agentops.project.schedule import CRON_PATH

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Crontab", "markers"]

# cron's own assignment syntax: NAME = value, blanks around "=" allowed, the
# value optionally in matching quotes (to keep blanks at its ends).
_ASSIGNMENT = re.compile(r"\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?)\s*")

_TIMEOUT_S = 30.0


def markers(home: Path) -> tuple[str, str]:
    """The two lines that enclose ``home``'s block."""
    return f"# >>> agentops {home} >>>", f"# <<< agentops {home} <<<"


class Crontab:
    """The crontab of the user running agentops, through the ``crontab`` command."""

    def __init__(self, command: str = "crontab") -> None:
        """Use ``command`` (a path, or a name on PATH) as cron's ``crontab``."""
        self.command = command

    def read(self) -> str:
        """The crontab as it is ("" when the user has none)."""
        result = self._run("-l")
        if result.returncode != 0:
            if "no crontab" in result.stderr.lower():
                return ""
            raise ConfigError(f"crontab -l failed: {_first_line(result.stderr)}")
        return result.stdout

    def write(self, text: str) -> None:
        """Install ``text`` as the whole crontab (through a file, never a pipe)."""
        fd, name = tempfile.mkstemp(prefix="agentops-crontab-", suffix=".txt")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            result = self._run(name)
            if result.returncode != 0:
                raise ConfigError(f"crontab refused the new crontab: {_first_line(result.stderr)}")
        finally:
            os.unlink(name)  # noqa: PTH108 - a name from mkstemp

    @staticmethod
    def block(text: str, home: Path) -> str | None:
        """The lines of ``home``'s block in ``text`` (without its markers), None if none."""
        lines = text.splitlines(keepends=True)
        span = _span(lines, home)
        return None if span is None else "".join(lines[span[0] + 1 : span[1] - 1])

    @staticmethod
    def environment(text: str, home: Path) -> dict[str, str]:
        """The environment cron runs ``home``'s block with, in the crontab ``text``.

        What cron sets itself for this user (``SHELL``, ``HOME``, ``LOGNAME``,
        ``USER``, its default ``PATH``), then each ``NAME=value`` line before
        the block (before the end, when there is no block yet: where
        ``--install`` puts it), then the ``PATH`` the block's lines set.
        """
        import pwd  # noqa: PLC0415 - only check asks

        try:
            user = pwd.getpwuid(os.geteuid())
            home_dir, name = user.pw_dir, user.pw_name
        except KeyError:  # a uid without an account (a container): cron would refuse it
            home_dir, name = os.environ.get("HOME", "/"), str(os.geteuid())
        environ = {
            "SHELL": "/bin/sh",
            "HOME": home_dir,
            "LOGNAME": name,
            "USER": name,
            "PATH": "/usr/bin:/bin",
        }
        lines = text.splitlines()
        span = _span([f"{line}\n" for line in lines], home)
        for line in lines[: span[0] if span else len(lines)]:
            found = _ASSIGNMENT.fullmatch(line)
            if found is not None:
                value = found["value"]
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":  # noqa: PLR2004
                    value = value[1:-1]
                environ[found["name"]] = value
        environ["PATH"] = CRON_PATH  # every line of the block sets it for its command
        return environ

    @staticmethod
    def with_block(text: str, home: Path, lines: str) -> str:
        """``text`` with ``home``'s block holding ``lines``: in its place, or appended."""
        begin, end = markers(home)
        block = [f"{begin}\n", *lines.splitlines(keepends=True), f"{end}\n"]
        current = text.splitlines(keepends=True)
        span = _span(current, home)
        if span is not None:
            return "".join([*current[: span[0]], *block, *current[span[1] :]])
        if current and not current[-1].endswith("\n"):
            current[-1] += "\n"  # cron needs the last line ended; only then is one added
        return "".join([*current, *block])

    @staticmethod
    def without_block(text: str, home: Path) -> str:
        """``text`` without ``home``'s block."""
        current = text.splitlines(keepends=True)
        span = _span(current, home)
        if span is None:
            return text
        return "".join([*current[: span[0]], *current[span[1] :]])

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.command, *args],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise ConfigError(
                f"no {self.command!r} command: install cron (Debian: apt-get install cron)"
            ) from None
        except subprocess.TimeoutExpired:
            raise ConfigError(f"{self.command} did not answer in {_TIMEOUT_S:g}s") from None


def _span(lines: list[str], home: Path) -> tuple[int, int] | None:
    begin, end = markers(home)
    stripped = [line.rstrip("\n") for line in lines]
    if begin not in stripped:
        return None
    start = stripped.index(begin)
    try:
        stop = stripped.index(end, start) + 1
    except ValueError:
        raise ConfigError(
            f"the crontab has the line {begin!r} but not {end!r}: fix it by hand (crontab -e)"
        ) from None
    return start, stop


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no message)"])[0]
