"""``agentops review``: results held for a human."""

from __future__ import annotations

import json
import sys

import click

from agentops.cli._common import (
    SuggestingGroup,
    clip,
    print_table,
    project_of,
    report,
    reports_errors,
    run_options,
    said,
)

__all__ = ["HELD_KEYS", "approve", "reject", "review", "review_list"]

HELD_KEYS = ("agent", "id", "run_id", "at", "confidence", "escalated", "result", "tool", "key")
"""The keys of each result ``review list --json`` prints: the agent, then those of ``Held``."""


@click.group(cls=SuggestingGroup)
def review() -> None:
    """Results and tool calls held for a human: list, approve (apply) or reject them.

    An agent with an apply() hook drafts results in run(); a result whose
    confidence is below [guard] auto_threshold is held here instead of applied
    (escalated, with a failure line, below review_threshold). A model's call of
    a tool declared @tool(confirm=True) is held here too, with its arguments.
    """


@review.command(name="list")
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
@reports_errors
def review_list(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """List held results, of AGENT or of every agent."""
    from agentops.errors import AgentOpsError  # noqa: PLC0415
    from agentops.ops.admin import current_state  # noqa: PLC0415

    project = project_of(ctx)
    names = [agent] if agent is not None else project.agent_names()
    rows, problems = [], []
    for name in names:
        try:
            held = current_state(project, name).review
        except AgentOpsError as exc:
            if agent is not None:  # the one asked for
                raise
            problems.append(exc)  # one broken agent must not hide the others' reviews
            continue
        rows += [{"agent": name, **item.model_dump(mode="json")} for item in held]
    code = said(problems)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        sys.exit(code)
    if not rows:
        click.echo("no results are held for review")
        sys.exit(code)
    print_table(
        ["AGENT", "ID", "AT", "CONFIDENCE", "ESCALATED", "RESULT"],
        [
            [
                row["agent"],
                row["id"],
                row["at"],
                "-" if row["confidence"] is None else f"{row['confidence']:g}",
                "yes" if row["escalated"] else "no",
                clip(_shown(row), 60),
            ]
            for row in rows
        ],
    )
    sys.exit(code)


def _shown(row: dict[str, object]) -> str:
    # A held tool call reads as the call: the tool and its arguments (redacted when held).
    arguments = json.dumps(row["result"])
    return f"{row['tool']}({arguments})" if row.get("tool") else arguments


@review.command()
@click.argument("agent")
@click.argument("held_id", metavar="ID")
@click.pass_context
@reports_errors
def approve(ctx: click.Context, agent: str, held_id: str) -> None:
    """Apply the held result ID of AGENT (or perform the held tool call), under a run's guards."""
    from agentops.run.runner import approve_held  # noqa: PLC0415

    outcome = approve_held(project_of(ctx), agent, held_id, options=run_options())
    report(outcome)


@review.command()
@click.argument("agent")
@click.argument("held_id", metavar="ID")
@click.option("--reason", help="Why, for the log.")
@click.pass_context
@reports_errors
def reject(ctx: click.Context, agent: str, held_id: str, reason: str | None) -> None:
    """Drop the held result ID of AGENT; a held tool call is never performed, and the model told."""
    from agentops.ops.admin import reject_held  # noqa: PLC0415

    report(reject_held(project_of(ctx), agent, held_id, reason=reason))
