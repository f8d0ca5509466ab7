"""The ``agentops`` command: parse, call the core, render, exit with the right code.

This is the only module that imports click. Each command turns the core's
:class:`~agentops.errors.AgentOpsError` into one line on stderr and its exit
code; the core is imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from agentops import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from agentops.errors import AgentOpsError
    from agentops.project import Project
    from agentops.session import Outcome, RunOptions

__all__ = ["main"]

EX_SOFTWARE = 70
"""Exit code of an unexpected error inside agentops itself (a bug: please report it)."""

_F = TypeVar("_F", bound="Callable[..., Any]")


def _say(message: str) -> None:
    """Print one line on stderr, secrets redacted: under cron it is mailed."""
    from agentops.redact import Redactor  # noqa: PLC0415 - only when there is something to say

    click.echo(f"agentops: {Redactor(os.environ).value(message)}", err=True)


def _fail(message: str, exit_code: int) -> NoReturn:
    _say(message)
    sys.exit(exit_code)


def _reports_errors(command: _F) -> _F:
    """Turn agentops errors into one line and their exit code; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from agentops.errors import AgentOpsError  # noqa: PLC0415

        try:
            return command(*args, **kwargs)
        except (click.ClickException, BrokenPipeError):
            raise  # click turns both into a message, or a quiet exit when a pipe closed
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
    failed, 2 usage, 65 params or output rejected, 70 internal error, 74 state
    file unreadable, 75 skipped or stopped by policy, 78 configuration error.
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

    outcome = run_agent(
        _project(ctx), agent, overrides=overrides, options=_run_options(dry_run=dry_run)
    )
    _finish(outcome)


def _run_options(*, dry_run: bool = False) -> RunOptions:
    from agentops.session import RunOptions  # noqa: PLC0415

    interactive = sys.stdout.isatty()
    return RunOptions(
        dry_run=dry_run, console=sys.stderr if interactive else None, exit_on_abandon=True
    )


def _finish(outcome: Outcome, *, quiet: bool | None = None) -> NoReturn:
    """Say what happened unless ``quiet`` (default: the outcome's own), then exit."""
    if not (outcome.quiet if quiet is None else quiet):
        _say(f"{outcome.message} (log: {outcome.log_path})")
    if outcome.threads_left:
        # Threads the agent left running hold its lock until this process
        # ends: end it now rather than wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(outcome.exit_code)
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
    from agentops.schedule import next_run  # noqa: PLC0415

    specs, problems = _project(ctx).agents()
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
        _print_table(
            ["NAME", "SCHEDULE", "NEXT RUN (LOCAL)", "DESCRIPTION"],
            [
                [
                    str(row["name"]),
                    str(row["schedule"] or "(by hand)"),
                    _short_time(row["next_run"]),
                    str(row["description"]),
                ]
                for row in rows
            ],
        )
    sys.exit(_said(problems))


def _said(problems: Sequence[AgentOpsError]) -> int:
    """Say each agent that could not be read; the exit code that makes (0 if none)."""
    for problem in problems:
        _say(problem.message)
    return problems[0].exit_code if problems else 0


def _short_time(iso: object) -> str:
    if not isinstance(iso, str):
        return "-"
    moment = datetime.fromisoformat(iso)
    return f"{moment:%Y-%m-%d %H:%M %z}"


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
    environment. Paste them into `crontab -e`, or replace your whole crontab
    with `agentops cron > agentops.cron && crontab agentops.cron` (the && keeps
    your crontab if agentops refuses).
    """
    from agentops.schedule import render_crontab  # noqa: PLC0415

    project = _project(ctx)
    specs, problems = project.agents()
    if problems:  # a partial crontab would silently drop an agent: refuse instead
        sys.exit(_said(problems))
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
@click.argument("agent")
@click.option("--circuit", is_flag=True, help="Close the circuit breaker.")
@click.pass_context
@_reports_errors
def reset(ctx: click.Context, agent: str, circuit: bool) -> None:
    """Reset a guard of AGENT by hand: `--circuit` closes its circuit breaker."""
    if not circuit:
        raise click.UsageError("say what to reset: --circuit")
    from agentops.admin import reset_circuit  # noqa: PLC0415

    _report(reset_circuit(_project(ctx), agent))


@main.command()
@click.argument("agent")
@click.option("--all", "every", is_flag=True, help="List every entry, not only unresolved ones.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option(
    "--resolve", "key", metavar="KEY", help="Settle the entry KEY (with --done or --redo)."
)
@click.option("--done", is_flag=True, help="KEY's effect happened: never redo it.")
@click.option("--redo", is_flag=True, help="KEY's effect did not happen: the next run may redo it.")
@click.option("--action", metavar="NAME", help="The action KEY belongs to, if several have it.")
@click.pass_context
@_reports_errors
def ledger(
    ctx: click.Context,
    agent: str,
    *,
    every: bool,
    as_json: bool,
    key: str | None,
    done: bool,
    redo: bool,
    action: str | None,
) -> None:
    """List AGENT's guarded actions whose effect is unknown, or settle one.

    An action is unresolved when the process died inside its do(): agentops
    never redoes it blindly. Check whether the effect happened, then run
    `agentops ledger AGENT --resolve KEY --done` (it did) or `--redo` (it did
    not: the next run may do it again).
    """
    from agentops import admin  # noqa: PLC0415

    if key is None:
        if done or redo or action:
            raise click.UsageError("--done, --redo and --action go with --resolve KEY")
    elif done == redo:
        raise click.UsageError("--resolve KEY needs one of --done or --redo")
    else:
        _report(admin.resolve_action(_project(ctx), agent, key, done=done, action=action))
    rows = admin.ledger_rows(admin.read_state(_project(ctx), agent), every=every)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{agent}: no {'' if every else 'unresolved '}ledger entries")
        return
    _print_table(
        ["ACTION", "KEY", "STATUS", "AT", "RUN"],
        [[r["action"], r["key"], r["status"], r["at"], r["run_id"]] for r in rows],
    )


@main.group()
def review() -> None:
    """Results held for a human: list, approve (apply) or reject them.

    An agent with an apply() hook drafts results in run(); a result whose
    confidence is below [guard] auto_threshold is held here instead of applied
    (escalated, with a failure line, below review_threshold).
    """


@review.command(name="list")
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
@_reports_errors
def review_list(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """List held results, of AGENT or of every agent."""
    from agentops.admin import read_state  # noqa: PLC0415
    from agentops.errors import AgentOpsError  # noqa: PLC0415

    project = _project(ctx.find_root())
    names = [agent] if agent else project.agent_names()
    rows, problems = [], []
    for name in names:
        try:
            held = read_state(project, name).review
        except AgentOpsError as exc:
            if agent:  # the one asked for
                raise
            problems.append(exc)  # one broken agent must not hide the others' reviews
            continue
        rows += [{"agent": name, **item.model_dump(mode="json")} for item in held]
    code = _said(problems)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        sys.exit(code)
    if not rows:
        click.echo("no results are held for review")
        sys.exit(code)
    _print_table(
        ["AGENT", "ID", "AT", "CONFIDENCE", "ESCALATED", "RESULT"],
        [
            [
                row["agent"],
                row["id"],
                row["at"],
                "-" if row["confidence"] is None else f"{row['confidence']:g}",
                "yes" if row["escalated"] else "no",
                _clip(json.dumps(row["result"]), 60),
            ]
            for row in rows
        ],
    )
    sys.exit(code)


@review.command()
@click.argument("agent")
@click.argument("held_id", metavar="ID")
@click.pass_context
@_reports_errors
def approve(ctx: click.Context, agent: str, held_id: str) -> None:
    """Apply the held result ID of AGENT, under the same guards as a run."""
    from agentops.runner import approve_held  # noqa: PLC0415

    outcome = approve_held(_project(ctx.find_root()), agent, held_id, options=_run_options())
    _report(outcome)


@review.command()
@click.argument("agent")
@click.argument("held_id", metavar="ID")
@click.option("--reason", help="Why, for the log.")
@click.pass_context
@_reports_errors
def reject(ctx: click.Context, agent: str, held_id: str, reason: str | None) -> None:
    """Drop the held result ID of AGENT without applying it."""
    from agentops.admin import reject_held  # noqa: PLC0415

    _report(reject_held(_project(ctx.find_root()), agent, held_id, reason=reason))


def _report(outcome: Outcome) -> NoReturn:
    """Operator commands say what they did on stdout, and why not on stderr.

    A person is waiting for the answer, so even a skip (another run holds the
    lock) is said, unlike a skipped run under cron.
    """
    if outcome.exit_code == 0:
        click.echo(outcome.message)
    _finish(outcome, quiet=outcome.exit_code == 0)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
