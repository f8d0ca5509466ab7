"""The ``agentops`` command: one module per command group, all on :mod:`click`.

This package is the only place that imports click. Each command parses,
calls the core, renders, and exits with the code of what happened
(:mod:`agentops.cli._common`).

Cron pays start-up on every tick, and importing click is a good part of it.
So :data:`main`, what the ``agentops`` executable and ``python -m agentops``
call, first looks whether the command line is a crontab's own
(:mod:`agentops.cli._cron_line`) and runs it without click; any other line,
and every other use of :data:`main`, is the click group of
:mod:`agentops.cli._root`, imported the first time it is needed. As PID 1
(a container without an init), ``run`` and ``tick`` first leave a supervisor
behind (:mod:`agentops.run.pid1`).
"""

from __future__ import annotations

import os
import sys

# typing.TYPE_CHECKING, without importing typing: as PID 1 agentops drops a
# SIGTERM until the supervisor blocks it, so nothing is imported before then.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from agentops.cli._common import LazyCommands

__all__ = ["main"]


def _group() -> LazyCommands:
    from agentops.cli._root import main as group  # noqa: PLC0415 - click, when a line needs it

    return group


class CommandLine:
    """The click group of every command, with a shortcut for cron's own command line.

    Called with no arguments, as the ``agentops`` executable and ``python -m
    agentops`` call it, it runs a crontab's line (``agentops [--home DIR] run
    NAME [--scheduled] [--dry-run] [-p KEY=VALUE]...``) itself, and hands any
    other line to click. Everything else (``CliRunner().invoke(main, ...)``,
    ``main.commands``, ``isinstance(main, click.Group)``) reaches the group
    itself: this object stands in for it.
    """

    def __call__(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        """Run the command line (``sys.argv`` unless ``args``), as click's ``main`` does."""
        if args is None and not extra:
            if os.getpid() == 1:  # a container's init: a supervisor stays behind
                from agentops.run.pid1 import supervise_as_init  # noqa: PLC0415

                supervise_as_init(sys.argv[1:], os.environ)  # returns in the child
            from agentops.cli._cron_line import run_cron_line  # noqa: PLC0415

            run_cron_line(sys.argv[1:], os.environ)  # returns only if the line is not cron's
        return _group().main(args, prog_name, **extra)

    def __getattr__(self, name: str) -> Any:
        """The group's attribute ``name``."""
        return getattr(_group(), name)

    def __repr__(self) -> str:
        """The group's repr."""
        return repr(_group())

    if not TYPE_CHECKING:  # type checkers see a CommandLine; isinstance() sees the group's class

        @property
        def __class__(self) -> type:
            return type(_group())


main = CommandLine()
"""The ``agentops`` command (the entry point in pyproject.toml)."""
