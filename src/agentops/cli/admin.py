"""Operator edits of an agent's guards and ledger: ``reset``, ``ledger``."""

from __future__ import annotations

import json

import click

from agentops.cli import main
from agentops.cli._common import print_table, project_of, report, reports_errors

__all__ = ["ledger", "reset"]


@main.command()
@click.argument("agent")
@click.option("--circuit", is_flag=True, help="Close the circuit breaker.")
@click.pass_context
@reports_errors
def reset(ctx: click.Context, agent: str, circuit: bool) -> None:
    """Reset a guard of AGENT by hand: `--circuit` closes its circuit breaker."""
    if not circuit:
        raise click.UsageError("say what to reset: --circuit")
    from agentops.admin import reset_circuit  # noqa: PLC0415

    report(reset_circuit(project_of(ctx), agent))


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
    from agentops import admin  # noqa: PLC0415

    if key is None:
        if done or redo or action:
            raise click.UsageError("--done, --redo and --action go with --resolve KEY")
    elif done == redo:
        raise click.UsageError("--resolve KEY needs one of --done or --redo")
    else:
        report(admin.resolve_action(project_of(ctx), agent, key, done=done, action=action))
    rows = admin.read_ledger(project_of(ctx), agent).rows(every=every)
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
