"""Seeing the agents: ``agentops status`` and ``agentops health``."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from agentops.cli._common import (
    clip,
    local_time,
    print_table,
    project_of,
    reports_errors,
    say,
)
from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from agentops.ops.status import AgentStatus

__all__ = ["HEALTH_KEYS", "HEALTH_PROBLEM_KEYS", "health", "status"]

HEALTH_KEYS = ("healthy", "agents", "problems")
"""The keys of the object ``agentops health --json`` prints, in order."""

HEALTH_PROBLEM_KEYS = ("agent", "health", "why")
"""The keys of each of its ``problems``: an agent that needs a human."""


def _statuses(ctx: click.Context, agent: str | None) -> list[AgentStatus]:
    from agentops.ops.status import agent_status, project_status  # noqa: PLC0415
    from agentops.project.schedule import cron_zone  # noqa: PLC0415
    from agentops.store import open_store  # noqa: PLC0415

    project = project_of(ctx)
    store = open_store(project, environ=os.environ)
    now, zone = datetime.now(UTC), cron_zone(os.environ)
    if agent is not None:
        project.agent(agent)  # an unknown agent is an error, not a broken row
        return [agent_status(project, store, agent, now=now, zone=zone)]
    return project_status(project, store, now=now, zone=zone)


@click.command()
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (documented keys).")
@click.pass_context
@reports_errors
def status(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """Show every agent (or AGENT): health, last run, next run, what needs a human.

    Reads only agent.toml and the state: no agent code runs, no lock is taken.
    """
    rows = _statuses(ctx, agent)
    if as_json:
        click.echo(json.dumps([row.row for row in rows], indent=2))
        return
    if not rows:
        click.echo("no agents")
        return
    print_table(
        ["AGENT", "HEALTH", "LAST RUN", "LAST SUCCESS", "NEXT RUN", "FAILS", "WHY"],
        [
            [
                row.agent,
                row.health,
                _last_run(row.row),
                local_time(row.row["last_success_at"]),
                local_time(row.row["next_run"]),
                str(row.row["consecutive_failures"] or "-"),
                clip(row.why or _slow_line(row.row), 60),
            ]
            for row in rows
        ],
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (documented keys).")
@click.option("--ping", metavar="URL", help="Send a heartbeat: URL when healthy, URL/fail if not.")
@click.pass_context
@reports_errors
def health(ctx: click.Context, as_json: bool, ping: str | None) -> None:
    """Exit 0 when no agent needs a human, else 1 with one line per agent that does.

    Meant as a cron job of its own, the watchdog over the others: `--ping`
    reports to a Healthchecks-style URL (a short timeout; it never hangs).
    """
    from agentops.ops.status import CONTENT  # noqa: PLC0415

    rows = _statuses(ctx, None)
    trouble = [row for row in rows if row.health not in CONTENT]
    lines = [f"{row.agent}: {row.health}: {row.why}" for row in trouble]
    _notify_stale(ctx, [row for row in trouble if row.health == "stale"])
    if ping:
        _ping(ping, lines)
    if as_json:
        problems = [
            dict(zip(HEALTH_PROBLEM_KEYS, (row.agent, row.health, row.why), strict=True))
            for row in trouble
        ]
        agents = {row.agent: row.health for row in rows}
        document = dict(zip(HEALTH_KEYS, (not trouble, agents, problems), strict=True))
        click.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            click.echo(line)
    sys.exit(ExitCode.FAILED if trouble else ExitCode.OK)


def _notify_stale(ctx: click.Context, stale: list[AgentStatus]) -> None:
    # A run that never happens cannot say so: the watchdog does, once per cooldown.
    project = project_of(ctx)
    if not stale or not project.config.notify.webhooks:
        return
    from agentops.run.options import RunOptions  # noqa: PLC0415
    from agentops.run.services import RunServices  # noqa: PLC0415

    for row in stale:
        # The agent's services only (its log, store, redactor): no run, no lease.
        services = RunServices.assemble(project, row.agent, RunOptions())
        try:
            services.notifier().stale(row.agent, row.why or "stale")
        finally:
            services.close()


def _ping(url: str, lines: list[str]) -> None:
    # The watchdog's own check, through the ping channel: the URL itself when all
    # is well, URL/fail with the lines as body if not. A heartbeat that cannot be
    # sent is said, and changes nothing else: the service notices the missing ping.
    import socket  # noqa: PLC0415

    from agentops._infra.log import EventLogger  # noqa: PLC0415
    from agentops.notify.channels import Notification  # noqa: PLC0415
    from agentops.notify.channels.ping import PingChannel  # noqa: PLC0415 - only the watchdog pings

    def said(level: str, event: str | None, fields: dict[str, Any], *, redacted: bool) -> None:
        del level, redacted
        if event == "notify.failed":  # the channel names the host only: the URL holds a token
            say(f"health: the heartbeat to {fields['ping']} failed: {fields['error']}")

    heartbeat = Notification(
        agent="health",
        kind="failure" if lines else "success",
        text="\n".join(lines) or "healthy",
        status=None,
        exit_code=None,
        run_id=None,
        host=socket.gethostname(),
        at=datetime.now(UTC),
        lines=tuple(lines),
    )
    PingChannel(url, log=EventLogger(said, {})).deliver(heartbeat)


def _slow_line(row: dict[str, Any]) -> str:
    # A slow run is no health: said where nothing more pressing is.
    from agentops.notify.slow import Slow, describe  # noqa: PLC0415

    slow = row["slow"]
    return "" if slow is None else f"slow: {describe(Slow(**slow))}"


def _last_run(row: dict[str, object]) -> str:
    last = row["last_run"]
    if not isinstance(last, dict):
        return "-"
    return f"{last['status']} {local_time(last['finished_at'])}"
