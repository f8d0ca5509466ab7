"""Reading an agent's log: ``agentops logs``."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from agentops.cli._common import clip, project_of, reports_errors, say, since_option

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from structlog.dev import ConsoleRenderer

    from agentops.ops.logs import LogLine
    from agentops.ops.logview import View
    from agentops.project.home import Project

__all__ = ["LEVEL_NAMES", "logs"]

LEVEL_NAMES = ("debug", "info", "warning", "error", "critical")
"""``--level`` choices (the same as :data:`agentops.ops.logs.LEVELS`, kept here for fast --help)."""


@click.command()
@click.argument("agent", required=False)
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
    help="Only the last N lines (with -f, 10 unless said).",
)
@click.option("-f", "--follow", is_flag=True, help="Then show lines as they are appended.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON lines.")
@click.pass_context
@reports_errors
def logs(
    ctx: click.Context,
    *,
    agent: str | None,
    run_id: str | None,
    last: bool,
    level: str | None,
    events: tuple[str, ...],
    since: float | None,
    count: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Show AGENT's log (every agent's, merged by time, without AGENT); -f follows it.

    Readable, or raw JSON lines with --json. Rotated files are read too,
    oldest first; -n, --last and -f read from the end, only as far back as
    they must. Filters combine (a line must pass all of them). Lines that
    are not JSON are shown as they are (with --json, on stderr), with the
    line before them. Ctrl-C ends -f (exit 0).
    """
    from agentops.ops.logs import LogFilter  # noqa: PLC0415
    from agentops.ops.logview import FOLLOW_LINES, followed, open_views, shown  # noqa: PLC0415

    if run_id is not None and last:
        raise click.UsageError("--run and --last cannot be used together")
    paths = _logs_of(project_of(ctx), agent, follow=follow)
    if not paths:
        return
    if follow and count is None and not (last or run_id):
        count = FOLLOW_LINES
    chosen = LogFilter(
        run_id=run_id,
        level=level,
        events=events,
        since=None if since is None else datetime.now(UTC) - timedelta(seconds=since),
    )
    with contextlib.ExitStack() as stack:
        views = open_views(paths, chosen, count=count, last=last, follow=follow)
        for view in views:
            stack.enter_context(view.reader)
        if agent is not None and not views[0].run_found:
            following = "; following every line" if follow else ""
            say(f"{agent}: no run in its log yet{following}")
            if not follow:
                return
        printer = _Printer(as_json=as_json, merged=agent is None)
        try:
            printer.print(shown(views, count=count, follow=follow))
            if follow:
                printer.print(followed(views))
        except KeyboardInterrupt:  # Ctrl-C is how -f ends: not an error
            sys.stdout.flush()


def _logs_of(project: Project, agent: str | None, *, follow: bool) -> dict[str, Path]:
    """The logs to read, by agent: AGENT's, or every agent's; none (said why) if there is none."""
    from agentops.ops.logs import agent_log, agent_logs  # noqa: PLC0415

    if agent is None:
        paths = agent_logs(project)
        if not paths:
            say("no agents")
        return paths
    path, files = agent_log(project, agent)
    if not files and not follow:
        say(f"{agent} has no log yet ({path})")
        return {}
    return {agent: path}


class _Printer:
    """Prints log lines readable or raw, and marks where each run (of each agent) begins."""

    def __init__(self, *, as_json: bool, merged: bool) -> None:
        self.as_json = as_json
        self.merged = merged
        self.run: tuple[str, str] | None = None
        self._renderer: ConsoleRenderer | None = None

    def print(self, lines: Iterable[tuple[View, LogLine]]) -> None:
        for view, line in lines:
            if self.as_json:
                self._raw(line)
            else:
                self._readable(view.agent, line)

    def _raw(self, line: LogLine) -> None:
        if line.event is not None:
            click.echo(line.text)
            return
        from agentops._infra.terminal import printable  # noqa: PLC0415

        # Read from the end, a line's number is not known (counting would read
        # the whole file): its byte offset says where it is instead.
        where = f":{line.lineno}" if line.lineno is not None else f" at byte {line.offset}"
        # Kept off stdout, so that it stays JSON lines for jq and friends.
        say(f"{line.path}{where}: not a JSON line: {clip(printable(line.text), 500)}")

    def _readable(self, agent: str, line: LogLine) -> None:
        from agentops._infra.log import console_renderer  # noqa: PLC0415
        from agentops._infra.terminal import printable  # noqa: PLC0415
        from agentops.ops.logs import readable  # noqa: PLC0415

        if self._renderer is None:
            self._renderer = console_renderer(colors=sys.stdout.isatty())
        run_id = None if line.event is None else line.event.get("run_id")
        if isinstance(run_id, str) and (agent, run_id) != self.run:
            self.run = (agent, run_id)
            whose = f"{printable(agent)} " if self.merged else ""
            click.echo(f"--- {whose}run {printable(run_id)}")
        click.echo(readable(line, self._renderer))
