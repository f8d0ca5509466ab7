"""The project's agents: ``agentops list`` and ``agentops cron`` (they read only TOML)."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

import click

from agentops.cli import main
from agentops.cli._common import print_table, project_of, reports_errors, said, short_time

__all__ = ["cron", "init", "list_agents"]


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
@reports_errors
def list_agents(ctx: click.Context, as_json: bool) -> None:
    """List the agents with their schedule and description (reads only TOML)."""
    from agentops.schedule import next_run  # noqa: PLC0415

    specs, problems = project_of(ctx).agents()
    now = datetime.now().astimezone()  # cron reads schedules in the machine's local time
    rows = []
    for spec in specs:
        schedule = spec.config.schedule
        upcoming = next_run(schedule, now) if schedule else None
        rows.append(
            {
                "name": spec.name,
                "schedule": schedule,
                "next_run": upcoming.isoformat() if upcoming else None,
                "description": spec.config.description,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_table(
            ["NAME", "SCHEDULE", "NEXT RUN (LOCAL)", "DESCRIPTION"],
            [
                [
                    str(row["name"]),
                    str(row["schedule"] or "(by hand)"),
                    short_time(row["next_run"]),
                    str(row["description"]),
                ]
                for row in rows
            ],
        )
    sys.exit(said(problems))


@main.command()
@click.pass_context
@reports_errors
def cron(ctx: click.Context) -> None:
    """Print crontab lines that run every scheduled agent.

    Paths are absolute and PATH is set, so the lines work under cron's minimal
    environment. Paste them into `crontab -e`, or replace your whole crontab
    with `agentops cron > agentops.cron && crontab agentops.cron` (the && keeps
    your crontab if agentops refuses).
    """
    from agentops.schedule import render_crontab  # noqa: PLC0415

    project = project_of(ctx)
    specs, problems = project.agents()
    if problems:  # a partial crontab would silently drop an agent: refuse instead
        sys.exit(said(problems))
    click.echo(
        render_crontab(
            [
                (spec.name, spec.config.schedule, spec.config.description)
                for spec in specs
                if spec.config.schedule
            ],
            program=_own_command(),
            home=project.home,
        ),
        nl=False,
    )


def _own_command() -> str:
    """The absolute command that starts this agentops, for cron to call."""
    script = Path(sys.argv[0])
    if script.name == "agentops":
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m agentops"


@main.command()
@click.argument("name")
@click.option(
    "--template",
    type=click.Choice(["basic", "http"]),
    default="basic",
    show_default=True,
    help="What the new agent starts as.",
)
@click.pass_context
@reports_errors
def init(ctx: click.Context, name: str, template: str) -> None:
    """Create agents/NAME/ with agent.toml, agent.py and a test that passes at once.

    Run its test with `pytest agents/NAME`, the agent with `agentops run NAME`.
    """
    from agentops.scaffold import scaffold  # noqa: PLC0415

    project = project_of(ctx)
    for path in scaffold(project, name, template):
        click.echo(f"wrote {path.relative_to(project.home)}")
    click.echo(f"next: pytest agents/{name} && agentops run {name}")
