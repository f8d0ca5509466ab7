"""The PostgreSQL store's tables are made by ``agentops store init`` only, and checked by all.

Against the suite's server: a schema dropped, or ``[store] schema`` naming
another, is refused by every command with the command to run, and never made
again empty (which once made the next run publish everything its ledger
held); a schema holding another program's tables is refused even by init; a
deleted version row is said as such; an empty schema a DBA made is filled by
init; ``store migrate`` migrates and never creates; tables of an older
version are migrated forward by it, as the next agentops will need.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from agentops.store import STORE_URL_ENV, StoreUnavailable
from agentops.store import _pgschema as schema_module
from agentops.store.postgres import PostgresStore
from pgserver import Psql
from suite import AGENTOPS, cron_env, remember

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PUBLISHING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    outbox: str

class Result(BaseModel):
    published: int

def _publish(params, key):
    with open(params.outbox, "a") as f:
        f.write(key + "\\n")
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    for key in ("a", "b", "c"):
        ctx.action("publish", key=key, do=lambda key=key: _publish(params, key))
    return Result(published=3)
"""


@pytest.fixture
def outbox(tmp_path) -> Path:
    """What the publisher publishes, one key a line: the world outside the store."""
    return tmp_path / "outbox"


@pytest.fixture
def home(project, outbox):
    """A project with a publisher and a hello agent."""
    project.add_agent("publisher", PUBLISHING, f'[params]\noutbox = "{outbox}"\n')
    project.add_agent("hello")
    return project


@pytest.fixture
def url(postgres) -> str:
    """A fresh database, its tables made (``agentops store init``)."""
    return postgres.database()


@pytest.fixture
def sql(postgres, url) -> Iterator[Psql]:
    """An operator's psql session on the database."""
    session = Psql(postgres, url)
    yield session
    session.close()


def agentops(home, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``agentops ARGS`` as cron runs it, on the store at ``url``."""
    done = subprocess.run(
        [str(AGENTOPS), "--home", str(home.home), *args],
        env=cron_env(home.home, **{STORE_URL_ENV: url}),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    remember(f"agentops {' '.join(args)}: stdout", done.stdout)
    remember(f"agentops {' '.join(args)}: stderr", done.stderr)
    return done


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of a command refused for its store (74)."""
    assert (done.returncode, done.stdout) == (74, ""), (done.returncode, done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    return line


def schemas(sql: Psql) -> list[str]:
    """The database's schemas of its own (not PostgreSQL's)."""
    return sql.send(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
        "AND nspname <> 'information_schema' ORDER BY 1;"
    )


def test_a_dropped_schema_is_refused_by_every_command_and_nothing_is_published_again(
    home, url, sql, outbox
):
    """DROP SCHEMA after a run: every command says to run store init; no table, no repeat.

    Until issue 18 the next run made the tables again, empty, and published
    every item again; ``store check`` said ok.
    """
    assert agentops(home, url, "run", "publisher").returncode == 0
    assert outbox.read_text().split() == ["a", "b", "c"]
    sql.send("DROP SCHEMA agentops CASCADE;")
    expected = "has no schema agentops, so no agentops tables: `agentops store init` creates them"
    for command in (
        ("run", "publisher"),
        ("store", "check"),
        ("store", "migrate"),
        ("status", "--json"),
        ("health",),
    ):
        assert expected in refused(agentops(home, url, *command)), command
    assert outbox.read_text().split() == ["a", "b", "c"], "nothing published again"
    assert schemas(sql) == ["public"], "no table was made again"


def test_a_schema_named_wrongly_is_refused_and_never_made(home, url, sql):
    """[store] schema with a typo: the run is refused, naming the schema; none is created."""
    (home.home / "agentops.toml").write_text('[store]\nschema = "agentops_prod"\n')
    line = refused(agentops(home, url, "run", "hello"))
    assert "(schema agentops_prod) has no schema agentops_prod" in line
    assert "or set [store] schema to the one holding the agents' state" in line
    assert schemas(sql) == ["agentops", "public"]


def test_a_schema_of_another_programs_tables_is_refused_even_by_init(home, url, sql):
    """[store] schema names a schema holding other tables: every command and init refuse it."""
    sql.send("CREATE SCHEMA billing; CREATE TABLE billing.invoice (id int);")
    (home.home / "agentops.toml").write_text('[store]\nschema = "billing"\n')
    for command in (("run", "hello"), ("store", "init"), ("store", "migrate")):
        line = refused(agentops(home, url, *command))
        assert "schema billing of the store" in line
        assert "holds tables, but not agentops' (no billing.meta)" in line
    tables = sql.send("SELECT tablename FROM pg_tables WHERE schemaname = 'billing';")
    assert tables == ["invoice"]


def test_an_empty_schema_a_dba_made_is_filled_by_init(home, url, sql):
    """An empty schema (made with the grants a DBA chose): runs say to init; init fills it."""
    sql.send("CREATE SCHEMA team_a;")
    (home.home / "agentops.toml").write_text('[store]\nschema = "team_a"\n')
    line = refused(agentops(home, url, "run", "hello"))
    assert line.startswith("agentops: schema team_a of the store postgresql:///")
    assert "is empty: run `agentops store init`" in line
    assert "is empty" in refused(agentops(home, url, "store", "migrate"))
    done = agentops(home, url, "store", "init")
    assert done.returncode == 0, done.stderr
    assert f"tables created, schema version {schema_module.SCHEMA_VERSION}" in done.stdout
    assert agentops(home, url, "run", "hello").returncode == 0


def test_a_deleted_version_row_is_said_not_relation_already_exists(home, url, sql):
    """The meta row deleted: every command, init too, says the version is gone; nothing changes."""
    assert agentops(home, url, "run", "hello").returncode == 0
    sql.send("DELETE FROM agentops.meta;")
    for command in (("run", "hello"), ("store", "check"), ("store", "init"), ("store", "migrate")):
        line = refused(agentops(home, url, *command))
        assert "has agentops tables but no schema version" in line
        assert "the schema_version row of agentops.meta is gone" in line
        assert "already exists" not in line
    assert sql.send("SELECT count(*) FROM agentops.agent_state;") == ["1"]
    version = schema_module.SCHEMA_VERSION
    sql.send(f"INSERT INTO agentops.meta VALUES ('schema_version', '{version}');")  # noqa: S608
    assert agentops(home, url, "run", "hello").returncode == 0


@pytest.mark.parametrize("table", ["note", "agent_state"])
def test_a_table_dropped_by_hand_is_refused_by_every_command_and_never_made_again(
    home, url, sql, table
):
    """Every command, check and init too, names the table gone (74); none makes it again."""
    assert agentops(home, url, "run", "hello").returncode == 0
    sql.send(f"DROP TABLE agentops.{table};")
    for command in (("run", "hello"), ("store", "check"), ("store", "init"), ("status",)):
        line = refused(agentops(home, url, *command))
        assert f"has agentops tables, but not agentops.{table}" in line, command
        assert "does not exist" not in line
    assert sql.send(f"SELECT to_regclass('agentops.{table}') IS NULL;") == ["t"]


def test_migrate_never_creates_the_tables(home, postgres):
    """store migrate on a database without tables: refused, and none made."""
    bare = postgres.database(init=False)
    line = refused(agentops(home, bare, "store", "migrate"))
    assert "`agentops store init` creates them" in line
    session = Psql(postgres, bare)
    try:
        assert schemas(session) == ["public"]
    finally:
        session.close()


def test_tables_of_an_older_version_are_refused_until_migrated(url, monkeypatch):
    """An agentops one version on: its commands ask for store migrate, which migrates once."""
    now = schema_module.SCHEMA_VERSION
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(schema_module.MIGRATIONS, now + 1, "CREATE TABLE {s}.later (id int)")
    store = PostgresStore(url)
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.describe()
        assert info.value.exit_code == 74
        assert info.value.message.endswith(
            f"has schema version {now}, older than this agentops' {now + 1}: "
            "run `agentops store migrate`"
        )
        assert store.migrate(create=False) == now
        assert store.migrate(create=False) == now + 1
        other = PostgresStore(url)
        described = other.describe()
        other.close()
        assert (described.schema_version, described.created) == (now + 1, False)
        assert store.execute("SELECT count(*) FROM {s}.later").fetchone() == (0,)
    finally:
        store.close()


def tables_of_version(postgres, monkeypatch, version: int, *statements: str) -> str:
    """A new database whose tables an agentops of ``version`` made, with ``statements`` run."""
    bare = postgres.database(init=False)
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", version)
    old = PostgresStore(bare)
    try:
        old.migrate(create=True)
        for statement in statements:
            old.execute(statement)
    finally:
        old.close()
        monkeypatch.undo()
    return bare


def test_a_version_1_store_migrates_to_keep_notes_and_keeps_its_state(postgres, monkeypatch):
    """Tables of version 1: refused until migrated; then notes go in, and the state is kept."""
    bare = tables_of_version(
        postgres,
        monkeypatch,
        1,
        "INSERT INTO {s}.agent_state (agent, state_json) VALUES ('a', '{}')",
    )
    store = PostgresStore(bare)
    try:
        with pytest.raises(StoreUnavailable, match="run `agentops store migrate`"):
            store.describe()
        assert store.migrate(create=False) == 1
        assert store.describe().agents == 1
        assert store.execute("SELECT count(*) FROM {s}.note").fetchone() == (0,)
    finally:
        store.close()


def test_a_version_2_store_migrates_to_keep_deadline_markers(postgres, monkeypatch):
    """Tables of version 2: `store migrate` adds the markers' table and the notes' lengths.

    The state is kept, and a note made before is counted as FTS5 counts it.
    """
    bare = tables_of_version(
        postgres,
        monkeypatch,
        2,
        "INSERT INTO {s}.agent_state (agent, state_json) VALUES ('a', '{}')",
        "INSERT INTO {s}.note (agent, text, tags, at, importance, run_id) "
        "VALUES ('a', 'disk full on db-1', 'ops', 0, 5, 'r')",
    )
    store = PostgresStore(bare)
    try:
        with pytest.raises(StoreUnavailable, match="run `agentops store migrate`"):
            store.remains("a")
        assert store.migrate(create=False) == 2
        assert store.describe().agents == 1
        assert store.remains("a").markers == ()
        counted = store.execute("SELECT word_count FROM {s}.note WHERE agent = 'a'").fetchone()
        assert counted == (6,), "disk, full, on, db, 1, ops"
    finally:
        store.close()


def test_a_version_3_store_migrates_to_hold_tick_claims(postgres, monkeypatch):
    """Tables of version 3: `store migrate` adds who holds a tick's claim.

    A tick claimed before is one started (nobody takes it over), and
    agentops tick claims as before after.
    """
    bare = tables_of_version(
        postgres,
        monkeypatch,
        3,
        "INSERT INTO {s}.tick (agent, tick) VALUES ('a', '2026-03-02T12:00:00Z')",
    )
    store = PostgresStore(bare)
    try:
        with pytest.raises(StoreUnavailable, match="run `agentops store migrate`"):
            store.last_tick("a")
        assert store.migrate(create=False) == 3
        assert store.claim_ticks({}, scheduled=["a"]).ticks == {}, "started: not taken over"
        later = datetime(2026, 3, 2, 13, tzinfo=UTC)
        assert store.claim_ticks({"a": later}, scheduled=["a"]).ticks == {"a": later}
    finally:
        store.close()
