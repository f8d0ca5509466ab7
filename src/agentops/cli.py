"""The ``agentops`` command: parse, call the core, render, exit with the right code.

This is the only module that imports click. Each command turns the core's
:class:`~agentops.errors.AgentOpsError` into one line on stderr and its exit
code; the core is imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from agentops import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentops.project import Project

__all__ = ["main"]

EX_SOFTWARE = 70
"""Exit code of an unexpected error inside agentops itself (a bug: please report it)."""

_F = TypeVar("_F", bound="Callable[..., Any]")


def _fail(message: str, exit_code: int) -> None:
    click.echo(f"agentops: {message}", err=True)
    sys.exit(exit_code)


def _reports_errors(command: _F) -> _F:
    """Turn agentops errors into one line and their exit code; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from agentops.errors import AgentOpsError  # noqa: PLC0415

        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except AgentOpsError as exc:
            _fail(exc.message, exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - one line under cron, not a traceback
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (a bug: please report it)",
                EX_SOFTWARE,
            )
        return None

    return wrapper  # type: ignore[return-value]


class _OneLineErrors(click.Group):
    """Click prints usage errors over three lines; cron mail deserves one."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command, printing a command-line mistake as one line (exit 2)."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as exc:
            where: click.Context | None = getattr(exc, "ctx", None)
            hint = f"; see {where.command_path} --help" if where else ""
            _fail(f"{exc.format_message().rstrip('.')}{hint}", exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agentops", message="%(prog)s %(version)s")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AGENTOPS_HOME",
    help="The project directory holding agents/ (default: $AGENTOPS_HOME, else the current one).",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """Run AI and automation agents from cron, safely.

    Every crontab line calls `agentops run AGENT`. Exit codes: 0 done, 1 task
    failed, 2 usage, 65 params or output rejected, 74 state file unreadable,
    75 skipped, 78 configuration error.
    """
    ctx.obj = home


def _project(ctx: click.Context) -> Project:
    from agentops.project import Project  # noqa: PLC0415

    return Project.locate(ctx.obj)


@main.command()
@click.argument("agent")
@click.option(
    "-p",
    "--param",
    "param_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one of agent.toml's [params]; repeatable.",
)
@click.option("--params-json", metavar="JSON", help="Override params with a JSON object (-p wins).")
@click.option("--dry-run", is_flag=True, help="Run with ctx.dry_run true and save nothing.")
@click.pass_context
@_reports_errors
def run(
    ctx: click.Context,
    agent: str,
    param_pairs: tuple[str, ...],
    params_json: str | None,
    dry_run: bool,
) -> None:
    """Run AGENT once, through the gatekeeper.

    Under cron (stdout not a terminal) a run that succeeds or is skipped prints
    nothing; any other outcome prints one line naming the log.
    """
    overrides = _parse_params(param_pairs, params_json)
    from agentops.runner import run_agent  # noqa: PLC0415

    interactive = sys.stdout.isatty()
    outcome = run_agent(
        _project(ctx),
        agent,
        overrides=overrides,
        dry_run=dry_run,
        console=sys.stderr if interactive else None,
    )
    if not outcome.quiet:
        click.echo(f"agentops: {outcome.message} (log: {outcome.log_path})", err=True)
    sys.exit(outcome.exit_code)


def _parse_params(pairs: tuple[str, ...], params_json: str | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if params_json is not None:
        try:
            decoded = json.loads(params_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from exc
        if not isinstance(decoded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params-json")
        overrides.update(decoded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-p")
        overrides[key.strip()] = value
    return overrides


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
@_reports_errors
def list_agents(ctx: click.Context, as_json: bool) -> None:
    """List the agents with their schedule and description (reads only TOML)."""
    from agentops._clock import utcnow  # noqa: PLC0415
    from agentops.schedule import next_run  # noqa: PLC0415

    specs, problems = _project(ctx).agents()
    now = utcnow()
    rows = []
    for spec in specs:
        schedule = spec.config.schedule
        upcoming = next_run(schedule, now) if schedule else None
        rows.append(
            {
                "name": spec.name,
                "schedule": schedule,
                "next_run": upcoming.isoformat().replace("+00:00", "Z") if upcoming else None,
                "description": spec.config.description,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _print_table(
            ["NAME", "SCHEDULE", "NEXT RUN (UTC)", "DESCRIPTION"],
            [
                [
                    str(row["name"]),
                    str(row["schedule"] or "(by hand)"),
                    str(row["next_run"] or "-")[:16].replace("T", " "),
                    str(row["description"]),
                ]
                for row in rows
            ],
        )
    for problem in problems:
        click.echo(f"agentops: {problem.message}", err=True)
    if problems:
        sys.exit(problems[0].exit_code)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


@main.command()
@click.pass_context
@_reports_errors
def cron(ctx: click.Context) -> None:
    """Print crontab lines that run every scheduled agent.

    Paths are absolute and PATH is set, so the lines work under cron's minimal
    environment. Install them with `agentops cron | crontab -` (this replaces
    your crontab) or paste them into `crontab -e`.
    """
    from agentops.schedule import render_crontab  # noqa: PLC0415

    project = _project(ctx)
    specs, problems = project.agents()
    if problems:
        # A partial crontab would silently drop an agent: refuse instead.
        for problem in problems:
            click.echo(f"agentops: {problem.message}", err=True)
        sys.exit(problems[0].exit_code)
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
