"""``agentops tick``: the one crontab line a host needs to run every scheduled agent."""

from __future__ import annotations

import sys

import click

from agentops._infra.clock import utcnow
from agentops.cli._common import project_of, reports_errors, say

__all__ = ["tick"]


@click.command()
@click.pass_context
@reports_errors
def tick(ctx: click.Context) -> None:
    """Run every agent whose schedule is due this minute, each in a process of its own.

    For cron, every minute: `* * * * * agentops tick` (`agentops cron
    --install --tick` installs it). The tick is the minute this command
    started. With a PostgreSQL store every host may run it: each agent runs
    once a tick, on the host that claimed it. At most `[tick] parallel`
    agents run at once here, and no more of a group's agents than its
    `[groups]` limit. Prints nothing when every agent succeeded or was
    skipped by policy; one line per agent that needs a human. Exit codes:
    0 none needs a human, 1 at least one does, 74 the store could not be
    reached, 78 agentops.toml is bad.
    """
    started = utcnow()  # before anything is read: the tick is when cron started us
    from agentops.run.tick import tick as run_tick  # noqa: PLC0415 - the whole run path

    report = run_tick(project_of(ctx), started=started, say=say)
    sys.exit(report.exit_code)
