"""``agentops store``: which store holds the agents' state, and moving it to another."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentops.cli._common import project_of, reports_errors

if TYPE_CHECKING:
    from agentops.project.home import Project
    from agentops.store import Store

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
    from agentops.store.postgres import SCHEMA_VERSION, PostgresStore  # noqa: PLC0415

    project = project_of(ctx)
    found = open_store(project, environ=os.environ)
    if isinstance(found, PostgresStore):
        before = found.migrate()
        agents = found.execute("SELECT count(*) FROM {s}.agent_state").fetchone()
        facts: dict[str, Any] = {
            "backend": "postgresql",
            "where": found.where,
            "schema_version": SCHEMA_VERSION,
            "created": before == 0,
            "agents": int(agents[0]) if agents else 0,
        }
    else:
        state_dir = project.state_dir
        facts = {
            "backend": "files",
            "where": str(state_dir),
            "schema_version": None,
            "created": False,
            "agents": sum((state_dir / f"{name}.json").exists() for name in project.agent_names()),
        }
    if as_json:
        click.echo(json.dumps({key: facts[key] for key in STORE_CHECK_KEYS}, indent=2))
        return
    version = f"schema version {facts['schema_version']}, " if facts["schema_version"] else ""
    created = "tables created, " if facts["created"] else ""
    click.echo(
        f"store: {facts['backend']} at {facts['where']}: {created}{version}"
        f"{facts['agents']} agent(s) with state: ok"
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
    from agentops.store import open_store  # noqa: PLC0415
    from agentops.store.copy import copy_agents  # noqa: PLC0415

    project = project_of(ctx)
    source = open_store(project, environ=os.environ)
    destination = _store_at(project, target)
    copied = copy_agents(
        project.agent_names(),
        source,
        destination,
        run_id=new_run_id(datetime.now(UTC)),
        overwrite=overwrite,
    )
    click.echo(f"copied {len(copied)} agent(s) to {_said(target)}: {', '.join(copied) or '-'}")


def _store_at(project: Project, target: str) -> Store:
    from agentops.errors import UsageError  # noqa: PLC0415

    if target.startswith(("postgresql://", "postgres://")):
        from agentops.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(target, schema=project.config.store.schema_name)
    if "://" in target:
        raise UsageError(f"--to takes a postgresql:// URL or a directory, not {_said(target)}")
    from agentops.store.file import FileStore  # noqa: PLC0415

    return FileStore(Path(target).absolute())


def _said(target: str) -> str:
    from agentops.store.postgres import safe_url  # noqa: PLC0415

    return safe_url(target)
