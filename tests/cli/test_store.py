"""``agentops store check`` and ``agentops store copy`` against the suite's PostgreSQL server.

And against :mod:`memstore`'s in-memory store, registered under ``memory://``
by the test (the command line reaches it through the registry, like any
backend), and the one-line errors of a store URL no backend takes. (The
file store's ``store check --json`` is in test_cli_json.py.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agentops.cli.store import STORE_CHECK_KEYS
from agentops.model.journal import Begin
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import STORE_URL_ENV, StoreDescription
from agentops.store.base import Notices, Pause
from agentops.store.file import FileStore
from agentops.store.postgres import PostgresStore
from memstore import registered
from pgserver import Psql
from suite import AGENTOPS, cron_env, eventually, remember

if TYPE_CHECKING:
    from collections.abc import Iterator

    from memstore import MemoryBackend

ACTING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    n: int

def run(params: Params, ctx: Context) -> Result:
    n = ctx.state.get("n", 0) + 1
    ctx.state["n"] = n
    ctx.action("publish", key=f"item-{n}", do=lambda: {"n": n})
    ctx.spend(usd=0.01, tokens=5)
    return Result(n=n)
"""

COPIED = (
    ".json",
    ".json.bak",
    ".ledger.json",
    ".attempt.json",
    ".paused.json",
    ".notices.json",
    ".tick",
)
"""An agent's files a copy carries (a ledger's .bak and the lock are the file store's own)."""


@pytest.fixture
def url(postgres) -> str:
    """A fresh database, its tables made (``agentops store init``)."""
    return postgres.database()


@pytest.fixture
def bare(postgres) -> str:
    """A fresh database without agentops' tables."""
    return postgres.database(init=False)


def with_password(url: str, password: str) -> str:
    """``url`` with a user and password in it (the local server trusts, and ignores it)."""
    return url.replace("postgresql:///", f"postgresql://postgres:{password}@/")


# -- store check -----------------------------------------------------------------------------


def test_init_creates_the_tables_and_check_finds_them(project, invoke, bare):
    """Before init, check says to run it (74); init creates the tables once; agents are counted.

    (Until issue 18 the first check created them: now only init does.)
    """
    project.add_agent("hello")
    env = {STORE_URL_ENV: bare}
    before = invoke("store", "check", env=env)
    assert (before.exit_code, before.stdout) == (74, "")
    (line,) = before.stderr.splitlines()
    assert "has no schema agentops, so no agentops tables: `agentops store init` creates" in line
    first = invoke("store", "init", env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("store: postgresql at postgresql:///")
    assert first.stdout.endswith(
        "(schema agentops): tables created, schema version 4, 0 agent(s) with state: ok\n"
    )
    again = invoke("store", "init", env=env)
    assert again.stdout.endswith("(schema agentops): schema version 4, 0 agent(s) with state: ok\n")
    assert run_agent(AgentopsProject(project.home), "hello", environ=env).exit_code == 0
    second = invoke("store", "check", env=env)
    assert second.stdout.endswith(
        "(schema agentops): schema version 4, 1 agent(s) with state: ok\n"
    )


def test_init_and_check_json_as_cron_runs_them(project, run_agentops, bare):
    """From real processes: init creates; check --json has the documented keys, no password."""
    project.add_agent("hello")
    secret_url = with_password(bare, "pw-never-shown")
    env = cron_env(project.home, **{STORE_URL_ENV: secret_url})
    done = run_agentops("store", "init", env=env)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "tables created" in done.stdout
    checked = run_agentops("store", "check", "--json", env=env)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
    document = json.loads(checked.stdout)
    assert document == {
        "backend": "postgresql",
        "where": f"{bare.replace('postgresql:///', 'postgresql://postgres@/')} (schema agentops)",
        "schema_version": 4,
        "created": False,
        "agents": 0,
    }


def test_the_environment_wins_over_agentops_toml(project, invoke, url):
    """$AGENTOPS_STORE_URL wins over the store agentops.toml names; unset, that one is used."""
    project.add_agent("hello")
    (project.home / "agentops.toml").write_text(
        '[store]\nurl = "postgresql:///nowhere?host=/nonexistent"\n'
    )
    assert invoke("store", "check", env={STORE_URL_ENV: url}).exit_code == 0
    assert invoke("store", "check", env={STORE_URL_ENV: ""}).exit_code == 74


def test_check_of_a_store_it_cannot_reach_is_74_in_one_line(project, invoke):
    """No server there: 74, one line naming the store without its password."""
    project.add_agent("hello")
    url = "postgresql://postgres:pw-never-shown@/nowhere?host=/nonexistent&connect_timeout=2"
    done = invoke("store", "check", env={STORE_URL_ENV: url})
    assert done.exit_code == 74
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("agentops: cannot connect to the store postgresql://postgres@/nowhere")
    assert "pw-never-shown" not in done.output


def test_tables_from_a_newer_agentops_are_74_for_check_and_run(project, invoke, url):
    """A schema version this agentops does not know: 74, and a line saying to upgrade."""
    project.add_agent("hello")
    store = PostgresStore(url)
    store.migrate()
    store.execute("UPDATE {s}.meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    for command in (("store", "check"), ("run", "hello")):
        done = invoke(*command, env={STORE_URL_ENV: url})
        assert done.exit_code == 74
        (line,) = done.stderr.splitlines()
        assert "schema version 99, written by a newer agentops" in line
        assert "upgrade agentops" in line


# -- store copy ------------------------------------------------------------------------------


@pytest.fixture
def ran(project, clock):
    """Two agents run twice each on the file store, by cron (ticks claimed); one paused."""
    project.add_agent("hello", toml='schedule = "@hourly"\n')
    project.add_agent("acting", ACTING, 'schedule = "@hourly"\n')
    home = AgentopsProject(project.home)
    for _ in range(2):
        for name in ("hello", "acting"):
            outcome = run_agent(home, name, environ={}, clock=clock, scheduled=True)
            assert outcome.exit_code == 0, outcome.message
        clock.advance(hours=1)
    store = FileStore(project.home / "state")
    store.set_pause("acting", Pause(at=clock(), reason="copying"))
    store.set_notices("hello", Notices(open=["failed"]))
    return project


def agent_files(directory: Path) -> dict[str, bytes]:
    """What a copy carries, file by file."""
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if any(
            path.name.endswith(f"{name}{suffix}")
            for name in ("hello", "acting")
            for suffix in COPIED
        )
        and not path.name.endswith(".ledger.json.bak")
    }


def test_a_copy_to_postgresql_and_back_changes_nothing(ran, invoke, url, tmp_path):
    """Files -> PostgreSQL -> files: every copied file byte for byte as it was."""
    before = agent_files(ran.home / "state")
    assert {"hello.tick", "acting.ledger.json", "acting.paused.json", "hello.notices.json"} <= set(
        before
    )
    there = invoke("store", "copy", "--to", url)
    assert there.exit_code == 0, there.output
    assert there.stdout.startswith("copied 2 agent(s) to postgresql:///")
    assert there.stdout.endswith(": acting, hello\n")

    back = tmp_path / "back"
    again = invoke("store", "copy", "--to", str(back), env={STORE_URL_ENV: url})
    assert again.exit_code == 0, again.output
    assert agent_files(back) == before


@pytest.mark.usefixtures("ran")
def test_a_copy_to_a_store_not_set_up_says_how_to_set_the_target_up(invoke, bare):
    """No tables at --to: 74, one line naming the target's own init; nothing written there."""
    done = invoke("store", "copy", "--to", bare)
    assert (done.exit_code, done.stdout) == (74, "")
    [line] = done.stderr.splitlines()
    assert "is empty" in line or "no agentops tables" in line, line
    assert line.endswith(
        f"(for the copy's target: {STORE_URL_ENV}=<the --to location> agentops store init)"
    ), line
    assert invoke("store", "check", env={STORE_URL_ENV: bare}).exit_code == 74, "still bare"


def test_a_copy_is_refused_while_a_dead_runs_journal_waits(ran, invoke, url, clock):
    """A journal left by a dead run: 74, one line saying to run the agent; nothing copied."""
    store = FileStore(ran.home / "state")
    with store.lease("acting", run_id="dead") as lease:
        journal = store.journal(lease, "dead")
        journal.append(Begin(run_id="dead", at=clock(), agent="acting"))
        journal.close()
    done = invoke("store", "copy", "--to", url)
    assert done.exit_code == 74
    (line,) = done.stderr.splitlines()
    assert "acting: a run that died left a journal in the source store" in line
    target = PostgresStore(url)
    try:
        assert target.snapshot("hello").state is None, "nothing is written unless all can be"
    finally:
        target.close()


def test_a_copy_onto_agents_the_target_holds_needs_overwrite(ran, invoke, url):
    """A second copy is refused (2) unless --overwrite, which replaces what the target holds."""
    assert invoke("store", "copy", "--to", url).exit_code == 0
    refused = invoke("store", "copy", "--to", url)
    assert refused.exit_code == 2
    assert "--overwrite replaces what it holds" in refused.stderr
    run_agent(AgentopsProject(ran.home), "hello", environ={})  # the files move on
    replaced = invoke("store", "copy", "--to", url, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    target = PostgresStore(url)
    try:
        assert target.load("hello") == FileStore(ran.home / "state").load("hello")
    finally:
        target.close()


@pytest.mark.usefixtures("ran")  # a home whose agents ran: there is something to copy
def test_a_copy_onto_an_agent_only_paused_in_the_target_needs_overwrite(invoke, url, clock):
    """A pause set in the target before cutting over is the operator's: not replaced unasked."""
    target = PostgresStore(url)
    try:
        target.set_pause("hello", Pause(at=clock(), reason="cutting over"))
        refused = invoke("store", "copy", "--to", url)
        assert refused.exit_code == 2
        assert "hello: the target store holds this agent already" in refused.stderr
        assert target.snapshot("acting").state is None, "nothing is written unless all can be"
        assert target.pause("hello") is not None
    finally:
        target.close()


GATED = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    gate: str

class Result(BaseModel):
    done: bool

def run(params: Params, ctx: Context) -> Result:
    Path(params.gate + ".waiting").write_text(ctx.run_id)
    while not Path(params.gate).exists():
        time.sleep(0.02)
    ctx.state["done"] = True
    return Result(done=True)
"""


def start_agentops(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``agentops ARGS`` started as cron starts it."""
    return subprocess.Popen(
        [str(AGENTOPS), "--home", str(home), *args],
        env=cron_env(home, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for ``process``; what it printed is kept for the scan for secrets."""
    stdout, stderr = process.communicate(timeout=120)
    remember(f"{process.args}: stdout", stdout)
    remember(f"{process.args}: stderr", stderr)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def holds_nothing(url: str, names: list[str]) -> bool:
    """Whether the store at ``url`` holds nothing of any of ``names``."""
    store = PostgresStore(url)
    try:
        return all(not any(store.snapshot(name)[1:]) for name in names)
    finally:
        store.close()


def test_a_copy_while_a_run_is_live_exits_75_and_writes_nothing(ran, url, tmp_path):
    """A run holds its lease: the copy exits 75 in one line before writing anything.

    Until issue 18 it exited 74, taking the live run's journal for a dead run's.
    """
    gate = tmp_path / "gate"
    ran.add_agent("gated", GATED, f'[params]\ngate = "{gate}"\n')
    run = start_agentops(ran.home, "run", "gated")
    try:
        assert eventually(Path(f"{gate}.waiting").exists, within_s=120), "the run never started"
        copy = finish(start_agentops(ran.home, "store", "copy", "--to", url))
    finally:
        gate.write_text("")
        done = finish(run)
    assert (copy.returncode, copy.stdout) == (75, "")
    (line,) = copy.stderr.splitlines()
    assert line.startswith("agentops: gated is already running (pid ")
    assert holds_nothing(url, ["acting", "gated", "hello"])
    assert done.returncode == 0, done.stderr


def test_a_run_starting_mid_copy_is_skipped_and_every_agent_is_copied(project, url, postgres):
    """A copy held up writing its first agent; a run of another starts: 75; all agents copied.

    Until issue 18 the copy took each agent's leases in turn, and a run that
    started meanwhile left it half done.
    """
    names = [f"agent{n:02}" for n in range(12)]
    for name in names:
        project.add_agent(name)
        assert run_agent(AgentopsProject(project.home), name, environ={}).exit_code == 0
    (project.home / "agentops.toml").write_text('[store]\nlock_timeout = "10m"\n')
    before = project.snapshot()
    holder, watcher = Psql(postgres, url), Psql(postgres, url)
    try:
        holder.send("BEGIN; LOCK TABLE agentops.agent_state IN EXCLUSIVE MODE;")
        copy = start_agentops(project.home, "store", "copy", "--to", url)
        assert eventually(
            lambda: (
                watcher.send(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agentops' "
                    "AND wait_event_type = 'Lock';"
                )
                == ["1"]
            ),
            within_s=120,
        ), "the copy never reached its first write"
        late = finish(start_agentops(project.home, "run", "agent07"))
        holder.send("ROLLBACK;")
        copied = finish(copy)
    finally:
        holder.close()
        watcher.close()
    assert (late.returncode, late.stdout, late.stderr) == (75, "", "")
    assert project.events("agent07")[-1]["reason"] == "overlap"
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith("copied 12 agent(s) to postgresql:///")
    assert project.snapshot() == before, "the late run changed nothing"
    files, target = FileStore(project.home / "state"), PostgresStore(url)
    try:
        assert all(target.load(name) == files.load(name) for name in names)
    finally:
        target.close()


def keyword_string(url: str, password: str | None = None) -> str:
    """``url`` (of the suite's server) as a libpq keyword string."""
    database, _, query = url.removeprefix("postgresql:///").partition("?")
    found = f"{query.replace('&', ' ')} dbname={database}"
    return found if password is None else f"{found} password='{password}'"


def test_a_copy_to_a_keyword_string_goes_to_postgresql(ran, invoke, url, tmp_path, monkeypatch):
    """--to "host=... password=...": the agents go to PostgreSQL; no directory; no password.

    Until issue 18 they went into a directory named after the string.
    """
    monkeypatch.chdir(tmp_path)
    target = keyword_string(url, "pw never shown")
    done = invoke("store", "copy", "--to", target)
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        f"copied 2 agent(s) to {keyword_string(url)} password=[REDACTED]: acting, hello\n"
    )
    assert not list(tmp_path.glob("*=*")), "no directory named after the string"
    store = PostgresStore(url)
    try:
        assert store.load("hello") == FileStore(ran.home / "state").load("hello")
    finally:
        store.close()


def test_a_keyword_string_libpq_cannot_read_is_2_in_one_line(ran, invoke, tmp_path, monkeypatch):
    """--to with an unterminated quote: 2, one line, the password not in it; nothing made."""
    monkeypatch.chdir(tmp_path)
    done = invoke("store", "copy", "--to", "host=db password='pw never shown")
    assert (done.exit_code, done.stdout) == (2, "")
    assert done.stderr == (
        "agentops: --to takes a postgresql:// URL, a libpq keyword string or a directory, "
        "not host=db password=[REDACTED]\n"
    )
    assert not list(tmp_path.glob("*=*"))
    assert ran.home.exists()


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("foo=bar", 'invalid connection option "foo"'),  # read as words, refused by libpq
        ("postgresql:/db2", "not postgresql:/db2"),  # a URL mistyped, no directory
    ],
)
@pytest.mark.usefixtures("ran")
def test_a_target_libpq_cannot_read_is_2_and_makes_nothing(
    invoke, tmp_path, monkeypatch, target, said
):
    """--to that is no location libpq reads: a usage error (2) in one line; no directory made."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    done = invoke("store", "copy", "--to", target)
    assert (done.exit_code, done.stdout) == (2, "")
    assert said in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert list(here.iterdir()) == []


def test_a_keyword_string_names_the_configured_store(project, invoke, url):
    """$AGENTOPS_STORE_URL as a keyword string: runs keep their state there; check names it."""
    project.add_agent("hello")
    env = {STORE_URL_ENV: keyword_string(url)}
    assert invoke("run", "hello", env=env).exit_code == 0
    checked = invoke("store", "check", env=env)
    assert checked.stdout == (
        f"store: postgresql at {keyword_string(url)} (schema agentops): "
        "schema version 4, 1 agent(s) with state: ok\n"
    )


@pytest.mark.parametrize(
    "spelled",
    [
        "query",  # libpq takes ?password=
        "slash",  # an unencoded password holding a /
        "at",  # an unencoded password holding an @
        "question",  # an unencoded password holding a ?
        "ssl",  # libpq takes ?sslpassword= (a client key's)
        "encoded",  # libpq decodes parameter names too: ?pass%77ord=
    ],
)
def test_a_password_in_the_url_is_never_printed(project, run_agentops, url, spelled):
    """However the URL holds it, store check and store copy name the store without it."""
    project.add_agent("hello")
    secret = "pw-never-shown"
    secret_url = {
        "query": f"{url}&password={secret}",
        "slash": with_password(url, f"{secret}/x"),
        "at": with_password(url, f"{secret}@x"),
        "question": with_password(url, f"{secret}?x"),
        "ssl": f"{url}&sslpassword={secret}",
        "encoded": f"{url}&pass%77ord={secret}",
    }[spelled]
    env = cron_env(project.home)
    for args in (
        ("store", "check"),
        ("store", "check", "--json"),
        ("store", "copy", "--to", secret_url),
    ):
        env_for = env if args[1] == "copy" else {**env, STORE_URL_ENV: secret_url}
        done = run_agentops(*args, env=env_for)
        assert secret not in done.stdout + done.stderr, (args, done.stdout, done.stderr)
        assert secret[:8] not in done.stdout + done.stderr


# -- a backend registered by the test, and URLs no backend takes ------------------------------


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    """``memory://`` registered for the test (``invoke`` runs the command in this process)."""
    with registered() as backend:
        yield backend


@pytest.mark.usefixtures("memory")
def test_check_describes_a_registered_backend(project, invoke):
    """store check says what the registered store says of itself, in words and in JSON."""
    project.add_agent("hello")
    env = {STORE_URL_ENV: "memory://check"}
    first = invoke("store", "check", env=env)
    assert (first.exit_code, first.stderr) == (0, ""), first.output
    assert (
        first.stdout
        == "store: memory at memory://check: tables created, 0 agent(s) with state: ok\n"
    )
    assert invoke("run", "hello", env=env).exit_code == 0
    document = json.loads(invoke("store", "check", "--json", env=env).stdout)
    assert document == {
        "backend": "memory",
        "where": "memory://check",
        "schema_version": None,
        "created": False,
        "agents": 1,
    }


@pytest.mark.usefixtures("memory")
@pytest.mark.parametrize("command", ["init", "migrate"])
def test_init_and_migrate_of_stores_without_tables_only_describe_them(project, invoke, command):
    """Files and a registered backend have no tables to make: init and migrate describe them."""
    project.add_agent("hello")
    files = invoke("store", command)
    assert (files.exit_code, files.stderr) == (0, "")
    assert files.stdout == f"store: files at {project.home / 'state'}: 0 agent(s) with state: ok\n"
    assert not (project.home / "state").exists(), "made by the first write, as ever"
    memory = invoke("store", command, env={STORE_URL_ENV: "memory://m"})
    assert (
        memory.stdout == "store: memory at memory://m: tables created, 0 agent(s) with state: ok\n"
    )


@pytest.mark.usefixtures("memory")
def test_a_copy_to_a_registered_backend_and_back_changes_nothing(ran, invoke, tmp_path):
    """Files -> memory:// -> files: every copied file byte for byte as it was."""
    before = agent_files(ran.home / "state")
    there = invoke("store", "copy", "--to", "memory://copy")
    assert (there.exit_code, there.stdout) == (
        0,
        "copied 2 agent(s) to memory://copy: acting, hello\n",
    )
    env = {STORE_URL_ENV: "memory://copy"}
    checked = invoke("store", "check", env=env)
    assert checked.stdout == "store: memory at memory://copy: 2 agent(s) with state: ok\n"
    back = tmp_path / "back"
    again = invoke("store", "copy", "--to", str(back), env=env)
    assert again.exit_code == 0, again.output
    assert agent_files(back) == before


def test_a_copy_to_a_url_no_backend_takes_is_2_in_one_line(project, invoke):
    """--to with an unknown scheme: 2, one line naming it without its password; nothing written."""
    project.add_agent("hello")
    done = invoke("store", "copy", "--to", "mysql://u:pw-never-shown@db/agents")
    assert (done.exit_code, done.stdout) == (2, "")
    assert done.stderr == (
        "agentops: --to takes a postgresql:// URL, a libpq keyword string or a directory, "
        "not mysql://u@db/agents\n"
    )


def test_a_copy_to_the_store_it_copies_from_is_a_usage_error(ran, invoke):
    """--to naming the home's own store: 2 saying so, not "already running" with its own pid."""
    done = invoke("store", "copy", "--to", str(ran.home / "state"))
    assert (done.exit_code, done.stdout) == (2, "")
    assert done.stderr == (
        f"agentops: --to names the store this home uses already: {ran.home / 'state'}\n"
    )


@pytest.mark.parametrize("command", [("status",), ("status", "--json"), ("health",)])
def test_a_store_location_libpq_cannot_read_stops_status_in_one_line(project, invoke, command):
    """Not a table of broken agents exiting 0: the store's one line, 78, as every command says."""
    project.add_agent("hello")
    project.add_agent("other")
    done = invoke(*command, env={STORE_URL_ENV: "postgresql://u@/db?host=/nowhere&bogus"})
    assert (done.exit_code, done.stdout) == (78, "")
    assert done.stderr.startswith("agentops: cannot read the store's location ")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [("store", "check"), ("status",), ("run", "hello")])
def test_a_store_url_no_backend_takes_is_78_in_one_line(project, invoke, command):
    """$AGENTOPS_STORE_URL with an unknown scheme: every command exits 78 with the same line."""
    project.add_agent("hello")
    done = invoke(*command, env={STORE_URL_ENV: "mysql://db/agents"})
    assert (done.exit_code, done.stdout) == (78, "")
    assert done.stderr == (
        f"agentops: ${STORE_URL_ENV} is not a postgresql:// URL or a libpq keyword string "
        "libpq can read: mysql://db/agents\n"
    )


def test_check_json_has_a_key_for_each_thing_a_store_describes():
    """STORE_CHECK_KEYS are the fields of StoreDescription, in order: describe() fills every key."""
    assert StoreDescription._fields == STORE_CHECK_KEYS
