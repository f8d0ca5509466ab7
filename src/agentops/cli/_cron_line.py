"""Cron's own command line, run without click: ``[--home DIR] run NAME [--scheduled]...``.

Every line ``agentops cron`` writes calls ``agentops --home DIR run NAME
--scheduled``, and cron pays the start-up on every tick, of which importing
click is a good part. :func:`parse` reads such a line (``--dry-run`` and ``-p
KEY=VALUE`` too) exactly as the click command would, and takes nothing else:
a line it does not take (help, a typo, any other option, a value click would
refuse) goes to click unchanged, which runs it or says what is wrong as it
always did. tests/test_cron_line.py holds the two to the same reading.

:func:`run_cron_line` then runs the agent as ``agentops run`` does, with the
same options, the same one-line errors and exit codes
(:mod:`agentops.cli._basics`). It loads agentops with the garbage collector
paused, then freezes what it loaded out of the collector's sight
(:func:`gc.freeze`): that lives until the process exits anyway, and scanning
it again at every collection and at exit cost more than anything else
agentops adds to a short run. The store's driver is loaded so too (psycopg,
for a PostgreSQL store: its objects nearly doubled the time the interpreter
took to exit).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from agentops._infra.clock import utcnow
from agentops.cli._basics import fail, finish, report_error, run_options
from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["HOME_ENV", "CronLine", "parse", "run_cron_line", "split_param"]

HOME_ENV = "AGENTOPS_HOME"
"""Where ``--home`` comes from when the line does not say (the root group's ``envvar`` too)."""


class CronLine(NamedTuple):
    """A run as a crontab's line asks for it: what the click command would be called with."""

    home: Path | None
    """``--home`` (else ``$AGENTOPS_HOME``); None: the current directory."""
    agent: str
    overrides: dict[str, str]
    """``-p KEY=VALUE``, by key (the last one of a key wins)."""
    dry_run: bool
    scheduled: bool


def split_param(pair: str) -> tuple[str, str] | None:
    """``KEY=VALUE`` as its key (stripped) and value; None when it is not one."""
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        return None
    return key.strip(), value


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> CronLine | None:
    """The run ``argv`` asks for, read as click reads it; None for any other line.

    ``environ`` is where ``$AGENTOPS_HOME`` is read, and where a shell asks
    click to complete a word (then this is not a run either).
    """
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name, v in environ.items() if v):
        return None  # a shell asking click to complete a word
    args = list(argv)
    home: str | None = None
    if len(args) >= 2 and args[0] == "--home":  # noqa: PLR2004 - the option and its value
        home, args = args[1], args[2:]
    elif args and args[0].startswith("--home="):
        home, args = args[0].removeprefix("--home="), args[1:]
    if not args or args[0] != "run":
        return None
    command = _parse_run(args[1:])
    if command is None:
        return None
    agent, pairs, dry_run, scheduled = command
    overrides: dict[str, str] = {}
    for pair in pairs:
        split = split_param(pair)
        if split is None:
            return None  # click says which pair is wrong
        overrides[split[0]] = split[1]
    if home is None:
        home = environ.get(HOME_ENV) or None  # click reads an empty variable as unset
    directory = None if home is None else _directory(home)
    if home is not None and directory is None:
        return None  # click refuses it, and says why
    return CronLine(
        home=directory, agent=agent, overrides=overrides, dry_run=dry_run, scheduled=scheduled
    )


def _directory(home: str) -> Path | None:
    """``home`` as the root group's ``click.Path(file_okay=False)`` takes it; None if refused."""
    try:
        found = os.stat(home)  # noqa: PTH116 - as click checks it (Path("") would be ".")
    except OSError:
        return Path(home)  # click takes a missing home: the project then says what it lacks
    except ValueError:
        return None  # not a path at all: click's to say
    if stat.S_ISREG(found.st_mode) or not os.access(home, os.R_OK):
        return None
    return Path(home)


def _parse_run(args: list[str]) -> tuple[str, list[str], bool, bool] | None:
    """``run``'s own arguments: the agent, its ``-p`` pairs and two flags, in any order."""
    agent: str | None = None
    pairs: list[str] = []
    dry_run = scheduled = False
    rest = iter(args)
    for arg in rest:
        if arg == "--scheduled":
            scheduled = True
        elif arg == "--dry-run":
            dry_run = True
        elif arg in ("-p", "--param"):
            value = next(rest, None)  # click takes the next word, whatever it is
            if value is None:
                return None
            pairs.append(value)
        elif arg.startswith("--param="):
            pairs.append(arg.removeprefix("--param="))
        elif arg.startswith("-") or agent is not None:
            return None  # another option (or "-", "--"), or a second name: click's
        else:
            agent = arg
    if agent is None:
        return None
    return agent, pairs, dry_run, scheduled


def run_cron_line(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Run the agent ``argv`` names if it is a crontab's line, and exit; else return."""
    line = parse(argv, environ)
    if line is not None:
        run(line)


def run(line: CronLine) -> NoReturn:
    """Run the agent as ``agentops run`` does, say what it says, exit with its code."""
    started = utcnow()  # a --scheduled run claims the tick cron started it for, however late
    try:
        with _kept_for_good():
            from agentops.project.home import Project  # noqa: PLC0415
            from agentops.run.options import skip_exit_code  # noqa: PLC0415
            from agentops.run.runner import run_agent  # noqa: PLC0415
            from agentops.store.registry import load_backend  # noqa: PLC0415

            project = Project.locate(line.home)
            load_backend(project)  # psycopg, for a PostgreSQL store: kept until exit too

        skip_code = skip_exit_code(os.environ)

        outcome = run_agent(
            project,
            line.agent,
            overrides=line.overrides,
            options=run_options(dry_run=line.dry_run, scheduled=line.scheduled, started=started),
        )
        finish(outcome, skip_code=skip_code)
    except BrokenPipeError as exc:
        if exc.errno != errno.EPIPE:
            raise  # as click lets it through
        _pipe_closed()
    except Exception as exc:  # noqa: BLE001 - one line under cron, not a traceback
        report_error(exc)
    except KeyboardInterrupt:
        import click  # noqa: PLC0415 - as the click command ends, so does this

        click.echo(file=sys.stderr)  # click ends a ^C with a blank line, then one of its own
        fail("aborted", ExitCode.FAILED)


@contextlib.contextmanager
def _kept_for_good() -> Iterator[None]:
    """Load with the garbage collector paused, then freeze all there is out of its sight.

    What agentops loads (its modules, pydantic's, their models) lives until
    the process exits: each collection scanned all of it again, while pydantic
    built the models, during the run and at exit, and that cost more than
    anything else agentops adds to a short run. What the agent makes is
    collected as ever. (The little garbage loading leaves, a few hundred KB,
    stays until exit.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _pipe_closed() -> NoReturn:
    # What click does when a pipe closes under a command: exit 1, without the
    # traceback Python would print while flushing the closed pipe at exit.
    from click.utils import _PacifyFlushWrapper  # noqa: PLC0415 - click's own way out

    sys.stdout = _PacifyFlushWrapper(sys.stdout)
    sys.stderr = _PacifyFlushWrapper(sys.stderr)
    sys.exit(ExitCode.FAILED)
