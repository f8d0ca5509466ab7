"""Operator edits of an agent: ``reset``, ``ledger``, ``pause``, ``resume``, ``state``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from agentops._infra.timestamps import in_range
from agentops.cli._common import (
    SuggestingGroup,
    print_table,
    project_of,
    report,
    reports_errors,
)

__all__ = ["ledger", "pause", "reset", "resume", "state"]


@click.command()
@click.argument("agent")
@click.option("--circuit", is_flag=True, help="Close the circuit breaker.")
@click.option("--budget", is_flag=True, help="Forget the recorded spends (the cost windows).")
@click.option("--limits", is_flag=True, help="Empty the rate-limit windows.")
@click.option("--all", "everything", is_flag=True, help="All of the above.")
@click.pass_context
@reports_errors
def reset(
    ctx: click.Context, agent: str, *, circuit: bool, budget: bool, limits: bool, everything: bool
) -> None:
    """Reset guards of AGENT by hand (under its lock; logged)."""
    if not (circuit or budget or limits or everything):
        raise click.UsageError("say what to reset: --circuit, --budget, --limits or --all")
    from agentops.ops.admin import reset_guards  # noqa: PLC0415

    report(
        reset_guards(
            project_of(ctx),
            agent,
            circuit=circuit or everything,
            budget=budget or everything,
            limits=limits or everything,
        )
    )


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    # A duration from now ("2h", "3d"), or a date and time (local unless it says its zone).
    if value is None:
        return None
    from agentops.project.units import parse_duration  # noqa: PLC0415

    try:
        moment = datetime.now(UTC) + timedelta(seconds=parse_duration(value))
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is neither a duration (30m, 2h, 3d; ten years at most) nor a date "
                "and time (2026-12-01 09:00, local unless it says its zone)"
            ) from None
    try:
        return in_range(moment)  # a naive time is the machine's local time, as cron's
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from None


@click.command()
@click.argument("agent")
@click.option("--reason", help="Why, for the log and `agentops status` (kept if not given).")
@click.option(
    "--until",
    metavar="WHEN",
    callback=_moment,
    help="End the pause by itself: after a duration (2h, 3d) or at a date and time "
    "(2026-12-01 09:00, local unless it says its zone).",
)
@click.pass_context
@reports_errors
def pause(ctx: click.Context, agent: str, reason: str | None, until: datetime | None) -> None:
    """Pause AGENT: its runs exit 75 quietly (reason=paused) until it is resumed, or --until.

    Takes effect at once, also while a run holds the agent's lock. Pausing a
    paused agent changes only what it is given: its reason and end stay.
    """
    from agentops.ops import admin  # noqa: PLC0415

    report(admin.pause(project_of(ctx), agent, reason=reason, until=until))


@click.command()
@click.argument("agent")
@click.pass_context
@reports_errors
def resume(ctx: click.Context, agent: str) -> None:
    """Let a paused AGENT run again."""
    from agentops.ops import admin  # noqa: PLC0415

    report(admin.resume(project_of(ctx), agent))


@click.group(cls=SuggestingGroup)
def state() -> None:
    """Look at an agent's state file, compare it with its backup, or restore the backup."""


@state.command(name="show")
@click.argument("agent")
@click.pass_context
@reports_errors
def state_show(ctx: click.Context, agent: str) -> None:
    """Print AGENT's state, with a crashed run's journal folded in (in memory only)."""
    from agentops.ops.admin import current_state  # noqa: PLC0415

    click.echo(current_state(project_of(ctx), agent).model_dump_json(indent=2))


@state.command(name="diff")
@click.argument("agent")
@click.pass_context
@reports_errors
def state_diff(ctx: click.Context, agent: str) -> None:
    """Show what the last save changed: the backup against the state, unified."""
    from agentops.ops.admin import state_diff as diff  # noqa: PLC0415

    text = diff(project_of(ctx), agent)
    click.echo(text or f"{agent}: the state and its backup are the same\n", nl=False)


@state.command(name="restore")
@click.argument("agent")
@click.pass_context
@reports_errors
def state_restore(ctx: click.Context, agent: str) -> None:
    """Make the backup AGENT's state again, and the state it replaces the backup.

    A second restore undoes the first. The replaced state is also kept as
    state/AGENT.json.pre-restore. Works on an unreadable state; refused (75)
    while a run holds the agent's lock.
    """
    from agentops.ops.admin import restore_state  # noqa: PLC0415

    report(restore_state(project_of(ctx), agent))


@click.command()
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
@reports_errors
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
    from agentops.ops import admin  # noqa: PLC0415

    if key is None:
        if done or redo or action:
            raise click.UsageError("--done, --redo and --action go with --resolve KEY")
    elif done == redo:
        raise click.UsageError("--resolve KEY needs one of --done or --redo")
    else:
        report(admin.resolve_action(project_of(ctx), agent, key, done=done, action=action))
    rows = admin.current_ledger(project_of(ctx), agent).rows(every=every)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{agent}: no {'' if every else 'unresolved '}ledger entries")
        return
    print_table(
        ["ACTION", "KEY", "STATUS", "AT", "RUN"],
        [[r["action"], r["key"], r["status"], r["at"], r["run_id"]] for r in rows],
    )
