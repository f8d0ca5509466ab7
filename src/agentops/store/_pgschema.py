"""The PostgreSQL store's tables: made and migrated on request, their version checked by all.

``agentops store init`` creates the schema and its tables (and migrates
tables an older agentops made); ``agentops store migrate`` migrates tables
that exist and never creates any. Both run under an advisory lock, so that
hosts doing it together do it once, waiting for it no longer than
``lock_timeout``. Every other use of the store only reads the version
(:func:`check_version`: one statement, which a read-only replica answers),
and refuses, with the command to run, tables it cannot use: none at all (a
schema dropped, or ``[store] schema`` naming another), another program's, a
version row deleted, another agentops' version, or one of its tables dropped
(found by the same statement; ``store init`` refuses it too). So a store, or
a table of it, is never made again empty by a run that would then repeat
everything its ledger held.

Each version's changes are one entry of :data:`MIGRATIONS`: a later
agentops appends one, and never edits one.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from agentops.errors import StateError
from agentops.store.base import StoreUnavailable

if TYPE_CHECKING:
    import psycopg

    from agentops.store._pgconnection import Connector

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "advisory_key",
    "check_version",
    "migrate",
    "tables",
]

SCHEMA_VERSION = 4
"""The version of the tables this agentops reads and writes."""

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE {s}.agent_state (
    agent text PRIMARY KEY,
    state_json text,
    backup_json text,
    ledger_json text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.lease (
    agent text PRIMARY KEY,
    token bigint NOT NULL,
    held boolean NOT NULL,
    locked boolean NOT NULL,
    pid integer,
    host text,
    run_id text,
    since timestamptz,
    expires_at timestamptz
);
CREATE TABLE {s}.journal (
    id bigserial PRIMARY KEY,
    agent text NOT NULL,
    run_id text NOT NULL,
    record text NOT NULL
);
CREATE INDEX journal_agent ON {s}.journal (agent, id);
CREATE TABLE {s}.agent_record (
    agent text NOT NULL,
    kind text NOT NULL,
    value_json text NOT NULL,
    PRIMARY KEY (agent, kind)
);
CREATE TABLE {s}.tick (
    agent text PRIMARY KEY,
    tick timestamptz NOT NULL
);
""",
    2: """
CREATE TABLE {s}.note (
    id bigserial PRIMARY KEY,
    agent text NOT NULL,
    text text NOT NULL,
    tags text NOT NULL,
    at double precision NOT NULL,
    importance integer NOT NULL CHECK (importance BETWEEN 1 AND 10),
    run_id text NOT NULL,
    words tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text || ' ' || tags))
        STORED
);
CREATE INDEX note_words ON {s}.note USING gin (words);
CREATE INDEX note_to_drop ON {s}.note (agent, importance, at, id);
CREATE TABLE {s}.reply (
    agent text NOT NULL,
    key text NOT NULL,
    reply text NOT NULL,
    stored double precision NOT NULL,
    expires double precision NOT NULL,
    PRIMARY KEY (agent, key)
);
CREATE INDEX reply_stored ON {s}.reply (agent, stored);
""",
    3: """
ALTER TABLE {s}.note ADD COLUMN word_count integer GENERATED ALWAYS AS (
    cardinality(array_remove(regexp_split_to_array(text || ' ' || tags, '[^[:alnum:]]+'), ''))
) STORED;
CREATE INDEX note_word_count ON {s}.note (agent) INCLUDE (word_count);
CREATE TABLE {s}.deadline_marker (
    agent text NOT NULL,
    run_id text NOT NULL,
    started_at timestamptz NOT NULL,
    kind text NOT NULL,
    last_words text NOT NULL,
    PRIMARY KEY (agent, run_id)
);
""",
    4: """
ALTER TABLE {s}.tick ADD COLUMN claimer integer;
COMMENT ON COLUMN {s}.tick.claimer IS
    'The agentops tick (from 1) that claimed the tick and has not started its run; '
    '0: settled, its agent found busy or skipped, never taken over; NULL: started';
""",
}
"""The statements taking the tables from the version before to each version ({s}: the schema)."""


def tables(version: int) -> list[str]:
    """The tables of ``version``, as its migrations made them: one gone is refused, not remade."""
    made = "".join(MIGRATIONS[v] for v in range(1, version + 1))
    return ["meta", *re.findall(r"CREATE TABLE \{s\}\.(\w+)", made)]


_LACKING = (
    "ARRAY(SELECT t FROM unnest(%s::text[]) AS t "
    "WHERE to_regclass(quote_ident(%s) || '.' || quote_ident(t)) IS NULL)"
)
"""Which of some tables ``schema`` lacks (its parameters: the tables, the schema)."""

_INIT = "`agentops store init`"


def advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for ``parts``, the same in every agentops."""
    digest = hashlib.sha256("\0".join(("agentops", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def check_version(connector: Connector, connection: psycopg.Connection[Any], schema: str) -> None:
    """Raise :class:`StoreUnavailable` unless ``schema`` holds this agentops' tables."""
    import psycopg  # noqa: PLC0415 - imported by the connection already

    with connector.answering(connection):
        try:
            row = connection.execute(
                f"SELECT (SELECT value FROM {schema}.meta WHERE key = 'schema_version'), "  # noqa: S608 - a checked identifier
                + _LACKING,
                (tables(SCHEMA_VERSION), schema),
            ).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise _missing(connector, connection, schema) from None
    assert row is not None  # noqa: S101 - a SELECT without FROM returns one row
    found = _version(connector, schema, None if row[0] is None else row[:1])
    if found < SCHEMA_VERSION:
        raise StoreUnavailable(
            f"the store {connector.where} has schema version {found}, older than this "
            f"agentops' {SCHEMA_VERSION}: run `agentops store migrate`"
        )
    _refuse_lacking(connector, schema, row[1])


def migrate(
    connector: Connector, connection: psycopg.Connection[Any], schema: str, *, create: bool
) -> int:
    """Bring ``schema``'s tables to :data:`SCHEMA_VERSION`; the version found (0: none).

    With ``create``, make the schema and the tables where there are none (an
    empty schema, or none); without, refuse to.
    """
    import psycopg  # noqa: PLC0415 - imported by the connection already

    def run(query: str, args: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        return connection.execute(query.replace("{s}", schema), args)

    with connector.answering(connection, failed="cannot be set up"), connection.transaction():
        try:
            run("SELECT pg_advisory_xact_lock(%s)", (advisory_key(schema, "migrate"),))
        except psycopg.errors.LockNotAvailable:
            raise StateError(
                f"the store {connector.where}: another `agentops store init` or "
                f"`store migrate` held the migration lock for longer than lock_timeout "
                f"({connector.config.lock_timeout:g} s); nothing was changed"
            ) from None
        if _relation(connection, schema, "meta"):
            found = _version(
                connector, schema, run("SELECT value FROM {s}.meta WHERE key = 'schema_version'")
            )
        else:
            if not create or _holds_relations(connection, schema):
                raise _missing(connector, connection, schema)
            run("CREATE SCHEMA IF NOT EXISTS {s}")
            run("CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)")
            found = 0
        for version in range(found + 1, SCHEMA_VERSION + 1):
            run(MIGRATIONS[version])
        if found < SCHEMA_VERSION:
            run(
                "INSERT INTO {s}.meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(SCHEMA_VERSION),),
            )
        lacking = connection.execute(
            f"SELECT {_LACKING}", (tables(SCHEMA_VERSION), schema)
        ).fetchone()
        _refuse_lacking(connector, schema, lacking[0] if lacking else [])
    return found


def _refuse_lacking(connector: Connector, schema: str, lacking: list[str]) -> None:
    # Made again empty, agent_state would forget every ledger (and the next
    # runs repeat what it held), note every note: a table gone is restored.
    if lacking:
        raise StoreUnavailable(
            f"the store {connector.where} has agentops tables, but not "
            f"{', '.join(f'{schema}.{name}' for name in lacking)} (dropped by hand?); "
            "nothing was changed: restore it from a backup (agentops never makes a table "
            "that held data again empty)"
        )


def _version(connector: Connector, schema: str, found: Any) -> int:
    """The version a ``meta`` row holds (a cursor or a row); refuse one that is not ours."""
    row = found.fetchone() if hasattr(found, "fetchone") else found
    if row is None:
        raise StoreUnavailable(
            f"the store {connector.where} has agentops tables but no schema version (the "
            f"schema_version row of {schema}.meta is gone); nothing was changed: put the row "
            "back, its value the version of the agentops that made the tables "
            f"({SCHEMA_VERSION} for this one)"
        )
    try:
        version = int(row[0])
    except ValueError:
        raise StoreUnavailable(
            f"the store {connector.where} holds an unreadable schema version {row[0]!r} "
            f"in {schema}.meta"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreUnavailable(
            f"the store {connector.where} has schema version {version}, written by a newer "
            f"agentops (this one knows {SCHEMA_VERSION}): upgrade agentops"
        )
    return version


def _missing(
    connector: Connector, connection: psycopg.Connection[Any], schema: str
) -> StoreUnavailable:
    """Why ``schema`` holds no agentops tables, and what to do about it."""
    where = connector.where
    exists = connection.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if exists != (1,):
        return StoreUnavailable(
            f"the store {where} has no schema {schema}, so no agentops tables: {_INIT} "
            "creates them (or set [store] schema to the one holding the agents' state)"
        )
    if _holds_relations(connection, schema):
        return StoreUnavailable(
            f"schema {schema} of the store {where} holds tables, but not agentops' (no "
            f"{schema}.meta): set [store] schema to the one holding the agents' state, or "
            f"to a new one and run {_INIT}"
        )
    return StoreUnavailable(f"schema {schema} of the store {where} is empty: run {_INIT}")


def _relation(connection: psycopg.Connection[Any], schema: str, name: str) -> bool:
    found = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{name}",))
    return found.fetchone() == (True,)


def _holds_relations(connection: psycopg.Connection[Any], schema: str) -> bool:
    """Whether ``schema`` holds any table, view, sequence or other relation."""
    found = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s)",
        (schema,),
    )
    return found.fetchone() == (True,)
