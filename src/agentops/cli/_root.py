"""The ``agentops`` click group: each command imported from its module when it is called.

:data:`agentops.cli.main` stands for this group, and builds it the first
time it is used as one; cron's own command line runs without it
(:mod:`agentops.cli._cron_line`).
"""

from __future__ import annotations

from pathlib import Path

import click

from agentops import __version__
from agentops.cli._common import LazyCommands
from agentops.cli._cron_line import HOME_ENV

__all__ = ["COMMANDS", "main"]


COMMANDS = {
    "check": "project:check",
    "cron": "project:cron",
    "export": "export:export",
    "health": "ops:health",
    "init": "project:init",
    "ledger": "admin:ledger",
    "list": "project:list_agents",
    "logs": "logs:logs",
    "memory": "memory:memory",
    "pause": "admin:pause",
    "report": "report:report",
    "reset": "admin:reset",
    "resume": "admin:resume",
    "review": "review:review",
    "run": "run:run",
    "state": "admin:state",
    "status": "ops:status",
    "store": "store:store",
    "tick": "tick:tick",
}
"""Each command, as ``module:function`` of this package: imported only when it is called."""


@click.group(
    cls=LazyCommands, commands_at=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="agentops", message="%(prog)s %(version)s")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=HOME_ENV,
    help="The project directory holding agents/ (default: $AGENTOPS_HOME, else the current one).",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """Run AI and automation agents from cron, safely.

    Every crontab line calls `agentops run AGENT`. Exit codes: 0 done, 1 task
    failed, 2 usage, 65 params or output rejected, 70 internal error, 74 state
    file unreadable, 75 skipped or stopped by policy, 78 configuration error.
    """
    ctx.obj = home
