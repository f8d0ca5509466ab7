"""``agentops store``: which store holds the agents' state, and moving it to another."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import click

from agentops.cli._common import project_of, reports_errors

__all__ = ["STORE_CHECK_KEYS", "store"]

STORE_CHECK_KEYS = ("backend", "where", "schema_version", "created", "agents")
"""The keys of ``agentops store check --json``."""


@click.group()
def store() -> None:
    """Where the agents' state lives: check it, or copy it to another store."""


@store.command(name="check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (documented keys).")
@click.pass_context
@reports_errors
def store_check(ctx: click.Context, as_json: bool) -> None:
    """Check the configured store: reach it, and create or check its tables.

    Exit 0 when it can be used; 74 (one line) when it cannot, 78 when it is
    misconfigured.
    """
    from agentops.store import open_store  # noqa: PLC0415

    described = open_store(project_of(ctx), environ=os.environ).describe()
    if as_json:
        click.echo(json.dumps({key: getattr(described, key) for key in STORE_CHECK_KEYS}, indent=2))
        return
    version = f"schema version {described.schema_version}, " if described.schema_version else ""
    created = "tables created, " if described.created else ""
    click.echo(
        f"store: {described.backend} at {described.where}: {created}{version}"
        f"{described.agents} agent(s) with state: ok"
    )


@store.command(name="copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL|DIR",
    help="The store to copy to: a postgresql:// URL, or a directory for files.",
)
@click.option("--overwrite", is_flag=True, help="Replace agents the target holds already.")
@click.pass_context
@reports_errors
def store_copy(ctx: click.Context, target: str, overwrite: bool) -> None:
    """Copy every agent's state, ledger and records from the configured store to --to.

    Each agent is copied under the leases of both stores (a running agent
    makes it exit 75). Nothing is written unless every agent can be copied:
    a journal a dead run left must be recovered first (run the agent once).
    A copy there and back changes nothing.
    """
    from agentops.run.options import new_run_id  # noqa: PLC0415
    from agentops.store import open_store, safe_url  # noqa: PLC0415
    from agentops.store.copy import copy_agents  # noqa: PLC0415

    project = project_of(ctx)
    source = open_store(project, environ=os.environ)
    destination = open_store(project, url=target)
    copied = copy_agents(
        project.agent_names(),
        source,
        destination,
        run_id=new_run_id(datetime.now(UTC)),
        overwrite=overwrite,
    )
    click.echo(f"copied {len(copied)} agent(s) to {safe_url(target)}: {', '.join(copied) or '-'}")
