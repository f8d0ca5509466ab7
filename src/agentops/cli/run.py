"""``agentops run``: what every crontab line calls.

A crontab's own line runs without click (:mod:`agentops.cli._cron_line`);
this command runs every other form, and both read ``-p`` with
:func:`~agentops.cli._cron_line.split_param`.
"""

from __future__ import annotations

import os
from typing import Any

import click
import pydantic_core

from agentops._infra.clock import utcnow
from agentops.cli._common import finish, project_of, reports_errors, run_options
from agentops.cli._cron_line import split_param

__all__ = ["run"]


@click.command()
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
@click.option(
    "--scheduled",
    is_flag=True,
    help="Started by cron: run only if this tick of the schedule was not run already.",
)
@click.pass_context
@reports_errors
def run(
    ctx: click.Context,
    agent: str,
    param_pairs: tuple[str, ...],
    params_json: str | None,
    *,
    dry_run: bool,
    scheduled: bool,
) -> None:
    """Run AGENT once, through the gatekeeper.

    Under cron (stdout not a terminal) a run that succeeds or is skipped prints
    nothing; any other outcome prints one line naming the log.
    """
    started = utcnow()  # a --scheduled run claims the tick cron started it for, however late
    overrides = _parse_params(param_pairs, params_json)
    from agentops.run.options import skip_exit_code  # noqa: PLC0415
    from agentops.run.runner import run_agent  # noqa: PLC0415

    skip_code = skip_exit_code(os.environ)

    outcome = run_agent(
        project_of(ctx),
        agent,
        overrides=overrides,
        options=run_options(dry_run=dry_run, scheduled=scheduled, started=started),
    )
    finish(outcome, skip_code=skip_code)


def _parse_params(pairs: tuple[str, ...], params_json: str | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if params_json is not None:
        try:
            decoded = pydantic_core.from_json(params_json, allow_inf_nan=False)
        except (ValueError, TypeError) as exc:  # TypeError: bytes argv could not decode
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from exc
        if not isinstance(decoded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params-json")
        overrides.update(decoded)
    for pair in pairs:
        split = split_param(pair)
        if split is None:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-p")
        key, value = split
        overrides[key] = value
    return overrides
