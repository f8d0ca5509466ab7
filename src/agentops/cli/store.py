"""``agentops store``: which store holds the agents' state, setting it up, and moving it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from agentops.cli._common import project_of, reports_errors

if TYPE_CHECKING:
    from agentops.store import Store, StoreDescription

__all__ = ["STORE_CHECK_KEYS", "store"]

STORE_CHECK_KEYS = ("backend", "where", "schema_version", "created", "agents")
"""The keys of ``agentops store check --json``."""


@click.group()
def store() -> None:
    """Where the agents' state lives: set it up, check it, or copy it to another store."""


@store.command(name="check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (documented keys).")
@click.pass_context
@reports_errors
def store_check(ctx: click.Context, as_json: bool) -> None:
    """Check the configured store: reach it, and check its tables' version (it writes nothing).

    Exit 0 when it can be used; 74 (one line, naming the command to run) when
    it cannot be reached, does not answer in time or has no tables this
    agentops can use; 78 when it is misconfigured.
    """
    from agentops.store import open_store  # noqa: PLC0415

    _say(open_store(project_of(ctx), environ=os.environ).describe(), as_json=as_json)


@store.command(name="init")
@click.pass_context
@reports_errors
def store_init(ctx: click.Context) -> None:
    """Create the configured store's schema and tables, or migrate those an older agentops made.

    Run once before the first run on a PostgreSQL store (no other command
    creates tables); running it again changes nothing. Hosts running it
    together create the tables once. Exit 0, or 74 with one line (a schema
    holding another program's tables is refused). Files need nothing.
    """
    from agentops.store import open_store  # noqa: PLC0415

    _say(open_store(project_of(ctx), environ=os.environ).prepare(create=True))


@store.command(name="migrate")
@click.pass_context
@reports_errors
def store_migrate(ctx: click.Context) -> None:
    """Migrate the configured store's tables to this agentops' version; never creates them.

    After upgrading agentops, when commands say to run it. A store holding no
    tables (a schema dropped, or [store] schema naming another) is refused,
    74, rather than made again empty. Exit 0 when the tables are this
    agentops' version.
    """
    from agentops.store import open_store  # noqa: PLC0415

    _say(open_store(project_of(ctx), environ=os.environ).prepare(create=False))


def _say(described: StoreDescription, *, as_json: bool = False) -> None:
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
    help=(
        "The store to copy to: a postgresql:// URL or a libpq keyword string "
        "(host=... dbname=...), or a directory for files."
    ),
)
@click.option("--overwrite", is_flag=True, help="Replace agents the target holds already.")
@click.pass_context
@reports_errors
def store_copy(ctx: click.Context, target: str, overwrite: bool) -> None:
    """Copy every agent's state, ledger, notes and records from the configured store to --to.

    The leases of every agent are taken first, on both stores, and held
    until the copy ends: a running agent makes it exit 75 before anything is
    written, and no run starts meanwhile. Nothing is written unless every
    agent can be copied: a journal a dead run left must be recovered first
    (run the agent once), and a damaged notes file refuses it (74). The LLM
    reply cache is not copied. A copy there and back changes nothing.
    """
    from agentops.errors import ConfigError, UsageError  # noqa: PLC0415
    from agentops.memory.shelf import Shelf  # noqa: PLC0415
    from agentops.run.options import new_run_id  # noqa: PLC0415
    from agentops.store import STORE_URL_ENV, StoreUnavailable, open_store, safe_url  # noqa: PLC0415
    from agentops.store.copy import copy_agents  # noqa: PLC0415
    from agentops.store.file import FileStore  # noqa: PLC0415

    project = project_of(ctx)
    source = open_store(project, environ=os.environ)
    destination = open_store(project, url=target)  # with this home's [store] schema and bounds
    try:
        target_is = destination.describe()
    except ConfigError as exc:  # a location libpq cannot read: the command line's mistake
        raise UsageError(f"--to: {exc.message}") from exc
    except StoreUnavailable as exc:  # its fix is for the target, not this home's store
        raise StoreUnavailable(
            f"{exc.message} (for the copy's target: "
            f"{STORE_URL_ENV}=<the --to location> agentops store init)"
        ) from exc
    source_is = source.describe()
    if (target_is.backend, target_is.where) == (source_is.backend, source_is.where):
        raise UsageError(f"--to names the store this home uses already: {target_is.where}")

    def notes_of(end: Store) -> Shelf:
        # A store keeping no notes of its own leaves them to files: a file store
        # beside its state, any other in the project's state/ (where runs look).
        if isinstance(end, FileStore):
            return Shelf(end.note_rows, end.directory, fs=end.fs)
        return Shelf(end.note_rows, project.state_dir)

    copied = copy_agents(
        project.agent_names(),
        source,
        destination,
        run_id=new_run_id(datetime.now(UTC)),
        overwrite=overwrite,
        notes=(notes_of(source), notes_of(destination)),
    )
    click.echo(f"copied {len(copied)} agent(s) to {safe_url(target)}: {', '.join(copied) or '-'}")
