"""What every command shares: one-line errors, exit codes, the project, tables.

Only the CLI imports click. Each command parses, calls the core, renders, and
turns the core's :class:`~agentops.errors.AgentOpsError` into one line on
stderr and its exit code; the core is imported inside the commands, so
``--help`` stays fast. What needs no click (saying a line, exiting, a run's
options) lives in :mod:`agentops.cli._basics` and is re-exported here.
"""

from __future__ import annotations

import functools
import importlib
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from agentops.cli._basics import fail, finish, report_error, run_options, say
from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from agentops.errors import AgentOpsError
    from agentops.model.outcome import Outcome
    from agentops.project.home import AgentSpec, Project

__all__ = [
    "LazyCommands",
    "OneLineErrors",
    "SuggestingGroup",
    "clip",
    "command_tree",
    "did_you_mean",
    "every_agent",
    "fail",
    "finish",
    "help_command",
    "local_time",
    "print_table",
    "project_of",
    "report",
    "reports_errors",
    "run_options",
    "said",
    "say",
    "short_time",
    "since_option",
]

_F = TypeVar("_F", bound="Callable[..., Any]")


def reports_errors(command: _F) -> _F:
    """Turn agentops errors into one line and their exit code; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, BrokenPipeError):
            raise  # click turns both into a message, or a quiet exit when a pipe closed
        except Exception as exc:  # noqa: BLE001 - one line under cron, not a traceback
            report_error(exc)

    return wrapper  # type: ignore[return-value]


class OneLineErrors(click.Group):
    """Click prints usage errors over three lines; cron mail deserves one."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command, printing a command-line mistake as one line (exit 2)."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as exc:
            where: click.Context | None = getattr(exc, "ctx", None)
            hint = f"; see {where.command_path} --help" if where else ""
            # A group called without its command: click's message is the whole help.
            message = (
                "Missing command"
                if isinstance(exc, click.exceptions.NoArgsIsHelpError)
                else exc.format_message().rstrip(".")
            )
            fail(f"{message}{hint}", exc.exit_code)
        except click.Abort:
            fail("aborted", ExitCode.FAILED)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


def project_of(ctx: click.Context) -> Project:
    """The project at ``--home`` (kept in the root context's ``obj``)."""
    from agentops.project.home import Project  # noqa: PLC0415

    return Project.locate(ctx.find_root().obj)


def every_agent(project: Project) -> list[AgentSpec]:
    """Every agent of ``project``, or its first problem raised (the others said first).

    For output that must name every agent: a crontab or a manifest stream
    silently missing one would drop its schedule.
    """
    specs, problems = project.agents()
    if problems:
        for problem in problems[1:]:
            say(problem.message)
        raise problems[0]
    return specs


def said(problems: Sequence[AgentOpsError]) -> int:
    """Say each agent that could not be read; the exit code that makes (0 if none)."""
    for problem in problems:
        say(problem.message)
    return problems[0].exit_code if problems else ExitCode.OK


def short_time(iso: object) -> str:
    """An ISO timestamp as ``2026-11-22 03:10 +0000``, ``-`` for none."""
    if not isinstance(iso, str):
        return "-"
    moment = datetime.fromisoformat(iso)
    return f"{moment:%Y-%m-%d %H:%M %z}"


def local_time(iso: object) -> str:
    """An ISO timestamp as ``2026-11-22 04:10`` in this machine's zone, ``-`` for none."""
    if not isinstance(iso, str):
        return "-"
    return f"{datetime.fromisoformat(iso).astimezone():%Y-%m-%d %H:%M}"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print rows under a header, in columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


def report(outcome: Outcome) -> NoReturn:
    """Operator commands say what they did on stdout, and why not on stderr.

    A person is waiting for the answer, so even a skip (another run holds the
    lock) is said, unlike a skipped run under cron.
    """
    if outcome.exit_code == ExitCode.OK:
        click.echo(outcome.message)
    finish(outcome, quiet=outcome.exit_code == ExitCode.OK)


def _seconds(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from agentops.project.units import parse_duration  # noqa: PLC0415

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def since_option(default: str | None, help_text: str) -> Callable[[_F], _F]:
    """``--since DURATION``, written as in agent.toml (``2h``, ``7d``); the command gets seconds."""
    return click.option(
        "--since", metavar="DURATION", default=default, callback=_seconds, help=help_text
    )


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when it was longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'status'?)`` for the choice closest to ``word``, or nothing."""
    import difflib  # noqa: PLC0415 - only for a word that was not found

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the command it most looks like."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The command ``args`` name; an unknown one is a usage error saying what was meant."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            name = click.utils.make_str(args[0]) if args else ""
            known = self.list_commands(ctx)
            if name in known:
                raise
            raise click.UsageError(
                f"No such command {name!r}{did_you_mean(name, known)}", ctx
            ) from None


@click.command(name="help")
@click.argument("words", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show the help of agentops, or of COMMAND (`agentops help state show`)."""
    context = ctx.find_root()
    command = context.command
    for word in words:
        known = command.list_commands(context) if isinstance(command, click.Group) else []
        found = command.get_command(context, word) if isinstance(command, click.Group) else None
        if found is None:
            raise click.UsageError(
                f"{context.command_path} has no command {word!r}{did_you_mean(word, known)}",
                context,
            )
        context = click.Context(found, info_name=word, parent=context)
        command = found
    click.echo(command.get_help(context))


class LazyCommands(SuggestingGroup, OneLineErrors):
    """The root group: a command's module is imported only when that command runs.

    Cron pays start-up on every tick: ``agentops run`` imports the run
    command, not the report's or the store's. ``agentops help`` is here too,
    beside the table of commands.
    """

    def __init__(self, *args: Any, commands_at: dict[str, str], **kwargs: Any) -> None:
        """``commands_at`` maps each command's name to ``module:function`` in this package."""
        super().__init__(*args, **kwargs)
        self.commands_at = commands_at

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted (for ``--help``)."""
        return sorted({*self.commands_at, *super().list_commands(ctx), "help"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, its module imported now."""
        where = self.commands_at.get(cmd_name)
        if where is None:
            found = super().get_command(ctx, cmd_name)
            return help_command if found is None and cmd_name == "help" else found
        module, _, attribute = where.partition(":")
        command: click.Command = getattr(
            importlib.import_module(f"agentops.cli.{module}"), attribute
        )
        return command


def command_tree(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``group``, with the words that call it, in order.

    For the help tests and the generated reference: the root group loads its
    commands lazily, so its ``commands`` dict alone is not the whole tree.
    """
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None:
            continue
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from command_tree(command, (*prefix, name))
