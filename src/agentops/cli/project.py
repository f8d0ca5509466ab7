"""The project's agents: ``agentops list`` and ``agentops cron`` (they read only TOML)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agentops.cli._common import (
    every_agent,
    fail,
    print_table,
    project_of,
    reports_errors,
    said,
    say,
    short_time,
)
from agentops.errors import AgentOpsError
from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from agentops.ops.check import Problem
    from agentops.project.home import AgentSpec, Project

__all__ = ["LIST_KEYS", "check", "cron", "init", "list_agents"]

LIST_KEYS = ("name", "schedule", "next_run", "description")
"""The keys of each agent ``agentops list --json`` prints, in order."""


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
@reports_errors
def list_agents(ctx: click.Context, as_json: bool) -> None:
    """List the agents with their schedule and description (reads only TOML)."""
    from agentops.project.schedule import next_run  # noqa: PLC0415

    specs, problems = project_of(ctx).agents()
    now = datetime.now().astimezone()  # cron reads schedules in the machine's local time
    rows = []
    for spec in specs:
        schedule = spec.config.schedule
        upcoming = next_run(schedule, now) if schedule else None
        facts = (
            spec.name,
            schedule,
            upcoming.isoformat() if upcoming else None,
            spec.config.description,
        )
        rows.append(dict(zip(LIST_KEYS, facts, strict=True)))
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


@click.command()
@click.option("--install", "action", flag_value="install", help="Put the lines in your crontab.")
@click.option("--uninstall", "action", flag_value="uninstall", help="Take them out again.")
@click.option(
    "--diff",
    "action",
    flag_value="diff",
    help="Show what --install would change; exit 1 if it would change anything.",
)
@click.option(
    "--tick",
    is_flag=True,
    help="One line, `agentops tick` every minute, instead of one line per agent.",
)
@click.pass_context
@reports_errors
def cron(ctx: click.Context, action: str | None, *, tick: bool) -> None:
    """Print the crontab lines that run every scheduled agent, or install them.

    Paths are absolute and PATH is set, so the lines work under cron's minimal
    environment. `--install` keeps them in a marked block of your crontab for
    this home (through the `crontab` command; every other line stays as it
    is; installing twice changes nothing), and refuses, changing nothing,
    while `agentops check` finds a problem. `--uninstall` takes the block out.
    With `--tick`, the block is one line that runs `agentops tick` every
    minute: it runs each agent when its schedule is due.
    """
    from agentops.project.crontab import Crontab  # noqa: PLC0415

    project = project_of(ctx)
    if action is None:
        click.echo(_crontab_lines(project, tick=tick), nl=False)
        return
    if action == "install":  # its runs would be this user's: refused in another's home
        project.check_writer()
    crontab = Crontab()
    current = crontab.read()
    if action == "uninstall":
        wanted = crontab.without_block(current, project.home)
    else:
        problems = _problems(project, crontab_text=current, block_in_step=False, tick=tick)
        if problems and action == "install":
            for problem in problems:
                say(str(problem))
            fail(
                "cron --install refused: agentops check found a problem; the crontab is unchanged",
                ExitCode.CONFIG,
            )
        wanted = crontab.with_block(current, project.home, _crontab_lines(project, tick=tick))
    if action == "diff":  # as diff(1) does: 1 when there is a difference
        changes = _diff(current, wanted)
        click.echo(changes or "the crontab is up to date", nl=not changes)
        sys.exit(ExitCode.FAILED if changes else ExitCode.OK)
    if wanted == current:
        if action == "uninstall":
            click.echo(f"the crontab has no agentops lines for {project.home}: nothing to remove")
        else:
            click.echo(f"the crontab is already up to date for {project.home}")
        return
    crontab.write(wanted)
    done = "removed from" if action == "uninstall" else "installed in"
    click.echo(f"agentops lines for {project.home} {done} the crontab")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of problems.")
@click.pass_context
@reports_errors
def check(ctx: click.Context, as_json: bool) -> None:
    """Check every agent can run: its TOML, schedule, code, params, models, crontab block.

    One line per problem, with the file and line; exit 78 if there is any.
    Imports each agent's code (under its timeout) to check it.
    """
    project = project_of(ctx)
    installed = _installed_crontab()
    problems = _problems(project, crontab_text=installed)
    if as_json:
        from agentops.ops.check import PROBLEM_KEYS  # noqa: PLC0415

        click.echo(
            json.dumps([dict(zip(PROBLEM_KEYS, p, strict=True)) for p in problems], indent=2)
        )
    else:
        for problem in problems:
            click.echo(str(problem))
        if not problems:
            click.echo(f"{len(project.agent_names())} agent(s), no problem found")
        note = _no_block_note(project, installed)
        if note:
            click.echo(note)
    sys.exit(ExitCode.CONFIG if problems else ExitCode.OK)


def _problems(
    project: Project, *, crontab_text: str | None, block_in_step: bool = True, tick: bool = False
) -> list[Problem]:
    # Scheduled agents are judged in the environment cron gives the block's
    # lines (the one it will be installed with, when it is not yet), never
    # in the shell this runs in. ``block_in_step``: an installed block that
    # differs from the schedules is a problem (not to the install mending it).
    from agentops.ops.check import check_project  # noqa: PLC0415
    from agentops.project.crontab import Crontab  # noqa: PLC0415

    judged = crontab_text if block_in_step else None
    block = None if judged is None else Crontab.block(judged, project.home)
    # A block running agentops tick is in step with the tick's line, not the agents'.
    tick = tick or (block is not None and re.search(r" tick$", block, re.MULTILINE) is not None)
    specs, unreadable = project.agents()
    # Agents that cannot be read: their problems are found (and said) one by one below.
    expected = None if unreadable else _render_lines(project, specs, tick=tick)
    return check_project(
        project,
        environ=os.environ,
        cron_environ=Crontab.environment(crontab_text or "", project.home),
        crontab_block=block,
        expected_block=expected,
    )


def _installed_crontab() -> str | None:
    from agentops.project.crontab import Crontab  # noqa: PLC0415

    try:
        return Crontab().read()
    except AgentOpsError:
        return None  # no cron here: nothing to be in step with


def _no_block_note(project: Project, installed: str | None) -> str | None:
    # Not a problem (the agents may run from systemd timers or Kubernetes),
    # but "no problem found" alone would let a person think cron runs them.
    from agentops.project.crontab import Crontab  # noqa: PLC0415

    if installed is not None and Crontab.block(installed, project.home) is not None:
        return None
    specs, _ = project.agents()
    scheduled = sum(spec.config.schedule is not None for spec in specs)
    if not scheduled:
        return None
    why = "there is no crontab command here" if installed is None else "the crontab has no block"
    return (
        f"note: cron runs none of the {scheduled} scheduled agent(s) of {project.home}: "
        f"{why} for it (agentops cron --install puts it there)"
    )


def _crontab_lines(project: Project, *, tick: bool = False) -> str:
    # Every agent, or its problems said: a partial crontab would silently drop one.
    return _render_lines(project, every_agent(project), tick=tick)


def _render_lines(project: Project, specs: list[AgentSpec], *, tick: bool) -> str:
    from agentops.project.schedule import render_crontab, render_tick_crontab  # noqa: PLC0415

    if tick:
        return render_tick_crontab(program=_own_command(), home=project.home)
    return render_crontab(
        [
            (spec.name, spec.config.schedule, spec.config.description)
            for spec in specs
            if spec.config.schedule
        ],
        program=_own_command(),
        home=project.home,
    )


def _diff(current: str, wanted: str) -> str:
    import difflib  # noqa: PLC0415

    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            "crontab (now)",
            "crontab (with agentops cron --install)",
        )
    )


def _own_command() -> str:
    """The absolute command that starts this agentops, for cron to call."""
    script = Path(sys.argv[0])
    if script.name == "agentops":
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m agentops"


@click.command()
@click.argument("name")
@click.option(
    "--template",
    type=click.Choice(["basic", "http", "llm"]),
    default="basic",
    show_default=True,
    help="What the new agent starts as.",
)
@click.pass_context
@reports_errors
def init(ctx: click.Context, name: str, template: str) -> None:
    """Create agents/NAME/ with agent.toml, agent.py and a test that passes at once.

    In a directory that is not a project yet (no agents/), it makes one there
    first. Run its test with `pytest agents/NAME`, the agent with
    `agentops run NAME`.
    """
    from agentops.project.home import Project, check_agent_name  # noqa: PLC0415
    from agentops.project.scaffold import scaffold  # noqa: PLC0415

    check_agent_name(name)  # before anything is made
    home = ctx.find_root().obj
    new = not Path(home if home is not None else Path.cwd(), "agents").is_dir()
    project = Project.create(home)
    if new:
        click.echo(f"made a new project in {project.home}")
    for path in scaffold(project, name, template):
        click.echo(f"wrote {path.relative_to(project.home)}")
    if template == "llm" and "main" not in project.config.models:
        click.echo(
            "then: declare the model 'main' (or name yours in its agent.toml) in "
            "agentops.toml [models], with its provider and its prices (its "
            "cost_usd_per_day cap needs them): docs/models.md"
        )
    click.echo(f"next: pytest agents/{name} && agentops run {name}")
