"""What every command shares that needs no click: one-line messages, exit codes, run options.

Kept apart from :mod:`agentops.cli._common` so that cron's own command line
(:mod:`agentops.cli._cron_line`) runs an agent without importing click: click
is imported here only when there is a line to print, and a run under cron
that succeeds or is skipped prints none. :mod:`agentops.cli._common`
re-exports every name, and the commands import them from there.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn, TextIO

from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from datetime import datetime

    from agentops.model.outcome import Outcome
    from agentops.run.options import RunOptions

__all__ = ["fail", "finish", "report_error", "run_options", "say"]


def say(message: str, *, file: TextIO | None = None) -> None:
    """Print one line on stderr (or ``file``), secrets redacted: under cron it is mailed."""
    import click  # noqa: PLC0415 - only when there is something to say (cron's runs seldom do)

    from agentops._infra.redact import Redactor  # noqa: PLC0415 - only when there is something to say

    click.echo(f"agentops: {Redactor(os.environ).value(message)}", err=file is None, file=file)


def fail(message: str, exit_code: int) -> NoReturn:
    """Say ``message`` and exit with ``exit_code``."""
    say(message)
    sys.exit(exit_code)


def report_error(exc: Exception) -> NoReturn:
    """An agentops error as its one line and exit code; anything else as an internal error."""
    from agentops.errors import AgentOpsError  # noqa: PLC0415

    if isinstance(exc, AgentOpsError):
        fail(exc.message, exc.exit_code)
    fail(
        f"internal error: {type(exc).__name__}: {exc} (a bug: please report it)",
        ExitCode.INTERNAL,
    )


def run_options(
    *, dry_run: bool = False, scheduled: bool = False, started: datetime | None = None
) -> RunOptions:
    """Options for a run started from the command line: a console only on a terminal.

    ``started``: when the command started; a ``--scheduled`` run claims the
    schedule's tick of that moment, however late the claim is made.
    """
    from agentops.run.options import RunOptions  # noqa: PLC0415

    interactive = sys.stdout.isatty()
    return RunOptions(
        dry_run=dry_run,
        console=sys.stderr if interactive else None,
        exit_on_abandon=True,
        scheduled=scheduled,
        tick=started,
    )


def finish(
    outcome: Outcome, *, quiet: bool | None = None, skip_code: int = ExitCode.SKIPPED
) -> NoReturn:
    """Say what happened unless ``quiet`` (default: the outcome's own), then exit.

    A run skipped or stopped by policy (75) exits with ``skip_code``
    (:func:`agentops.run.options.skip_exit_code`); what it says, its log
    and its state stay the same.
    """
    # With threads left, the capture stays: what they print still goes to the log.
    from agentops._infra.stderr import real_stderr  # noqa: PLC0415

    real = real_stderr() if outcome.threads_left else None
    code = skip_code if outcome.exit_code == ExitCode.SKIPPED else outcome.exit_code
    if not (outcome.quiet if quiet is None else quiet):
        say(outcome.summary, file=real)
    if outcome.threads_left:
        # Threads the agent left running hold its lock until this process
        # ends: end it now rather than wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
