"""Reading an agent's log: ``agentops logs``."""

from __future__ import annotations

import collections
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from agentops.cli._common import clip, project_of, reports_errors, say, since_option

if TYPE_CHECKING:
    from collections.abc import Iterable

    from structlog.dev import ConsoleRenderer

    from agentops.ops.logs import LogLine

__all__ = ["LEVEL_NAMES", "logs"]

LEVEL_NAMES = ("debug", "info", "warning", "error", "critical")
"""``--level`` choices (the same as :data:`agentops.ops.logs.LEVELS`, kept here for fast --help)."""


@click.command()
@click.argument("agent")
@click.option("--run", "run_id", metavar="ID", help="Only the lines of the run ID.")
@click.option("--last", is_flag=True, help="Only the lines of the last run (started or ended).")
@click.option(
    "--level",
    type=click.Choice(LEVEL_NAMES, case_sensitive=False),
    help="Only lines at this level or above.",
)
@click.option(
    "--event",
    "events",
    metavar="PATTERN",
    multiple=True,
    help="Only events matching this glob (action.*); repeat for several.",
)
@since_option(None, "Only lines of the last DURATION (2h, 30m, 7d).")
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0, max=1_000_000_000),
    help="Only the last N lines.",
)
@click.option("-f", "--follow", is_flag=True, help="Then show lines as they are appended.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON lines.")
@click.pass_context
@reports_errors
def logs(
    ctx: click.Context,
    *,
    agent: str,
    run_id: str | None,
    last: bool,
    level: str | None,
    events: tuple[str, ...],
    since: float | None,
    count: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Show AGENT's log: readable, or raw JSON lines with --json; -f follows it.

    Rotated files are read too, oldest first. Filters combine (a line must
    pass all of them). Lines that are not JSON are shown as they are (with
    --json, on stderr), with the line before them. Ctrl-C ends -f (exit 0).
    """
    from agentops.ops.logs import LogFilter, LogReader, agent_log, last_run_id  # noqa: PLC0415

    if run_id is not None and last:
        raise click.UsageError("--run and --last cannot be used together")
    path, files = agent_log(project_of(ctx), agent)
    if not files and not follow:
        say(f"{agent} has no log yet ({path})")
        return
    with LogReader(path) as reader:
        if last:
            run_id = last_run_id(reader.lines())
            if run_id is None:
                following = "; following every line" if follow else ""
                say(f"{agent}: no run in its log yet{following}")
                if not follow:
                    return
        chosen = LogFilter(
            run_id=run_id,
            level=level,
            events=events,
            since=None if since is None else datetime.now(UTC) - timedelta(seconds=since),
        )
        printer = _Printer(as_json=as_json)
        lines: Iterable[LogLine] = chosen.select(reader.lines(partial=not follow))
        if count is not None:
            lines = collections.deque(lines, maxlen=count)
        try:
            printer.print(lines)
            if follow:
                printer.print(chosen.select(reader.follow()))
        except KeyboardInterrupt:  # Ctrl-C is how -f ends: not an error
            sys.stdout.flush()


class _Printer:
    """Prints log lines readable or raw, and marks where each run begins."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.run_id: str | None = None
        self._renderer: ConsoleRenderer | None = None

    def print(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            if self.as_json:
                self._raw(line)
            else:
                self._readable(line)

    def _raw(self, line: LogLine) -> None:
        if line.event is not None:
            click.echo(line.text)
            return
        from agentops._infra.terminal import printable  # noqa: PLC0415

        # Kept off stdout, so that it stays JSON lines for jq and friends.
        say(f"{line.path}:{line.lineno}: not a JSON line: {clip(printable(line.text), 500)}")

    def _readable(self, line: LogLine) -> None:
        from agentops._infra.log import console_renderer  # noqa: PLC0415
        from agentops._infra.terminal import printable  # noqa: PLC0415
        from agentops.ops.logs import readable  # noqa: PLC0415

        if self._renderer is None:
            self._renderer = console_renderer(colors=sys.stdout.isatty())
        run_id = None if line.event is None else line.event.get("run_id")
        if isinstance(run_id, str) and run_id != self.run_id:
            self.run_id = run_id
            click.echo(f"--- run {printable(run_id)}")
        click.echo(readable(line, self._renderer))
