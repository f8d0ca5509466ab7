"""The registry of store backends: a URL's scheme picks the backend; one function opens a store.

The second implementation is :mod:`memstore`'s in-memory store, registered
here under ``memory://`` as any package outside agentops would register one;
``test_cli_store.py`` checks it and copies through it from the command line.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from agentops.errors import ConfigError, UsageError
from agentops.model.state import AgentState
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store import (
    STORE_URL_ENV,
    Backend,
    StoreDescription,
    StoreOptions,
    backend_for,
    open_store,
    register_backend,
    unregister_backend,
)
from agentops.store.file import FileStore
from agentops.store.postgres import PostgresStore
from agentops.store.registry import FILES, POSTGRESQL
from memstore import MemoryBackend, MemoryStore, registered

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    """``memory://`` registered for the test."""
    with registered() as backend:
        yield backend


@pytest.fixture
def home(project) -> AgentopsProject:
    """The project, as agentops opens it."""
    project.add_agent("hello")
    return AgentopsProject(project.home)


# -- which backend a location names -----------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("postgresql://db/agents", POSTGRESQL),
        ("postgres://db/agents", POSTGRESQL),
        ("postgresql:///agents?host=/run/postgresql", POSTGRESQL),
        ("/srv/agents/state", FILES),
        ("relative/state", FILES),
        ("mysql://db/agents", None),
        ("POSTGRESQL://db/agents", None),
        ("postgresql:/agents", None),  # a URL mistyped, never a directory so named
        ("./postgresql:/agents", FILES),
    ],
)
def test_the_scheme_picks_the_backend(location, expected):
    """postgresql:// and postgres:// are PostgreSQL, no scheme is files, another scheme nothing."""
    assert backend_for(location) is expected


def test_without_a_url_the_project_keeps_files_in_state(home):
    """No $AGENTOPS_STORE_URL and no [store] url: a file store on the project's state/."""
    store = open_store(home, environ={})
    assert isinstance(store, FileStore)
    assert store.directory == home.state_dir


def test_a_configured_postgresql_url_opens_the_postgresql_store(home):
    """$AGENTOPS_STORE_URL names PostgreSQL; [store] schema is passed on (nothing connects yet)."""
    (home.home / "agentops.toml").write_text('[store]\nschema = "team_a"\n')
    configured = AgentopsProject(home.home)  # a project object reads its configuration once
    store = open_store(configured, environ={STORE_URL_ENV: "postgres://db/agents"})
    assert isinstance(store, PostgresStore)
    assert (store.url, store.schema) == ("postgres://db/agents", "team_a")


@pytest.mark.parametrize(
    "location", ["host=/run/postgresql dbname=agents", "postgresql:///agents?host=/run/postgresql"]
)
@pytest.mark.parametrize("where", ["agentops.toml", "environment"])
def test_a_keyword_string_or_a_url_opens_the_postgresql_store(home, location, where):
    """[store] url or $AGENTOPS_STORE_URL may be a URL or a libpq keyword string."""
    toml = "[store]\n"
    if where == "agentops.toml":
        toml += f"url = {location!r}\n".replace("'", '"')
    (home.home / "agentops.toml").write_text(toml)
    environ = {STORE_URL_ENV: location} if where == "environment" else {}
    store = open_store(AgentopsProject(home.home), environ=environ)
    assert isinstance(store, PostgresStore)
    assert store.url == location
    assert store.where == f"{location} (schema agentops)"


@pytest.mark.parametrize(
    ("url", "said"),
    [("mysql://u:pw-never-shown@db/agents", "mysql://u@db/agents"), ("/srv/a", "/srv/a")],
)
def test_a_configured_url_of_no_backend_is_a_configuration_error(home, url, said):
    """A $AGENTOPS_STORE_URL no backend takes (a directory neither): 78, naming where it is set."""
    with pytest.raises(ConfigError) as info:
        open_store(home, environ={STORE_URL_ENV: url})
    assert info.value.exit_code == 78
    assert info.value.message == (
        f"${STORE_URL_ENV} is not a postgresql:// URL or a libpq keyword string libpq can read: "
        f"{said}"
    )


def test_a_bad_store_url_in_agentops_toml_is_blamed_on_its_line(home):
    """[store] url that is no location: 78 naming agentops.toml and its line, not the variable."""
    (home.home / "agentops.toml").write_text('[logs]\nkeep = 3\n\n[store]\nurl = "host=x dbname"\n')
    with pytest.raises(ConfigError) as info:
        open_store(AgentopsProject(home.home), environ={})
    assert info.value.message.startswith(f"{home.home / 'agentops.toml'}:5: [store] url is not")
    assert STORE_URL_ENV not in info.value.message


def test_a_named_url_of_no_backend_is_a_usage_error_without_its_password(home):
    """store copy --to with a scheme no backend takes: 2, the store named without its password."""
    with pytest.raises(UsageError) as info:
        open_store(home, url="mysql://u:pw-never-shown@db/agents")
    assert info.value.exit_code == 2
    assert info.value.message == (
        "--to takes a postgresql:// URL, a libpq keyword string or a directory, "
        "not mysql://u@db/agents"
    )


def test_a_named_directory_is_a_file_store_there(home, tmp_path):
    """store copy --to DIR: a file store in DIR, made absolute."""
    store = open_store(home, url=str(tmp_path / "elsewhere"))
    assert isinstance(store, FileStore)
    assert store.directory == tmp_path / "elsewhere"


def _imported_after(code: str) -> set[str]:
    """The agentops store modules and psycopg imported by a fresh Python running ``code``."""
    script = (
        "import sys\n"
        f"{code}\n"
        "print(' '.join(m for m in sys.modules if m.startswith(('agentops.store.', 'psycopg'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_only_the_chosen_backends_module_is_imported(home, tmp_path):
    """Opening a file store imports no PostgreSQL code; opening a PostgreSQL store no file store."""
    opening = (
        "from pathlib import Path\n"
        "from agentops.project.home import Project\n"
        "from agentops.store import open_store\n"
        f"project = Project(Path({str(home.home)!r}))\n"
    )
    files = _imported_after(opening + "open_store(project, environ={})")
    assert "agentops.store.file" in files
    assert not {m for m in files if "postgres" in m or m.startswith("psycopg")}
    named = _imported_after(opening + f"open_store(project, url={str(tmp_path / 'x')!r})")
    assert not {m for m in named if "postgres" in m}
    postgresql = _imported_after(
        opening + f"open_store(project, environ={{{STORE_URL_ENV!r}: 'postgresql://db/x'}})"
    )
    assert "agentops.store.postgres" in postgresql
    assert "agentops.store.file" not in postgresql
    assert not {m for m in postgresql if m.startswith("psycopg")}, "not before it connects"


def test_loading_the_backend_imports_its_driver_and_opens_nothing(home):
    """load_backend imports psycopg for a PostgreSQL store (never connecting), nothing for files."""
    loading = (
        "from pathlib import Path\n"
        "from agentops.project.home import Project\n"
        "from agentops.store.registry import load_backend\n"
        f"project = Project(Path({str(home.home)!r}))\n"
    )
    files = _imported_after(loading + "load_backend(project, environ={})")
    assert not {m for m in files if "postgres" in m or m.startswith("psycopg")}
    # No server answers there: loading opens no connection, so it cannot fail.
    postgresql = _imported_after(
        loading + f"load_backend(project, environ={{{STORE_URL_ENV!r}: 'postgresql://db/x'}})"
    )
    assert {"agentops.store.postgres", "psycopg"} <= postgresql
    for refused in ("mysql://db", "a=b c"):  # opening the store says what is wrong, not this
        _imported_after(
            loading + f"load_backend(project, environ={{{STORE_URL_ENV!r}: {refused!r}}})"
        )


# -- registering a backend --------------------------------------------------------------------


def test_a_registered_backend_opens_its_urls_from_the_environment(home, memory):
    """A backend registered from outside agentops opens $AGENTOPS_STORE_URL of its scheme."""
    store = open_store(home, environ={STORE_URL_ENV: "memory://one"})
    assert isinstance(store, MemoryStore)
    again = open_store(home, url="memory://one")
    assert isinstance(again, MemoryStore)
    with store.lease("hello", run_id="r", ttl_s=60) as lease:
        store.commit(lease, AgentState(agent="hello", data={"n": 1}))
    assert again.load("hello").data == {"n": 1}, "one place, two store objects"
    assert set(memory.places) == {"memory://one"}


@pytest.mark.usefixtures("memory")
def test_a_run_keeps_its_state_in_a_registered_backend(home):
    """A run with $AGENTOPS_STORE_URL of a registered scheme keeps its state there, not in files."""
    env = {STORE_URL_ENV: "memory://runs"}
    for _ in range(2):
        assert run_agent(home, "hello", environ=env).exit_code == 0
    store = open_store(home, environ=env)
    assert store.load("hello").data == {"runs": 2}
    assert store.describe().agents == 1
    assert not list(home.state_dir.glob("hello.json*"))


def test_the_messages_name_every_registered_scheme(home, memory):
    """Once memory:// is registered, a bad URL is told both schemes it could have used."""
    with pytest.raises(ConfigError) as info:
        open_store(home, environ={STORE_URL_ENV: "mysql://db"})
    assert info.value.message.startswith(
        f"${STORE_URL_ENV} is not a postgresql:// or memory:// URL or a libpq keyword string"
    )
    assert memory.backend is backend_for("memory://x")


def test_a_scheme_is_taken_once():
    """A scheme taken already, or a backend with none, is refused; the built-ins stay."""
    with pytest.raises(ValueError, match=r"postgres:// is taken by 'postgresql'"):
        register_backend(Backend(name="other", schemes=("postgres",), open=POSTGRESQL.open))
    with pytest.raises(ValueError, match="no URL scheme"):
        register_backend(Backend(name="other", schemes=(), open=POSTGRESQL.open))
    assert backend_for("postgres://db/x") is POSTGRESQL


def test_an_unregistered_backend_opens_nothing(home):
    """After unregister_backend its scheme is unknown again; unregistering twice is harmless."""
    memory = MemoryBackend()
    register_backend(memory.backend)
    assert isinstance(open_store(home, url="memory://x"), MemoryStore)
    unregister_backend(memory.backend)
    unregister_backend(memory.backend)
    assert backend_for("memory://x") is None
    with pytest.raises(UsageError):
        open_store(home, url="memory://x")


# -- what a store says of itself --------------------------------------------------------------


def test_a_file_store_counts_the_agents_with_a_state_file(tmp_path):
    """Only <name>.json files count: not ledgers, records, backups, journals, locks or others."""
    directory = tmp_path / "state"
    assert FileStore(directory).describe() == StoreDescription(
        backend="files", where=str(directory), schema_version=None, created=False, agents=0
    )
    directory.mkdir()
    for name in (
        "hello.json",
        "digest.json",
        "hello.json.bak",
        "hello.ledger.json",
        "hello.attempt.json",
        "hello.paused.json",
        "hello.notices.json",
        "hello.journal",
        "hello.lock",
        "hello.json.tmp",
        "Notes.json",
    ):
        (directory / name).write_text("{}")
    (directory / "sub.json").mkdir()
    assert FileStore(directory).describe().agents == 2


def test_a_store_in_memory_describes_itself(memory):
    """describe() of the registered backend: its name, its URL, whether it made the place."""
    first = memory.open("memory://d", StoreOptions())
    assert first.describe() == StoreDescription(
        backend="memory", where="memory://d", schema_version=None, created=True, agents=0
    )
    assert not memory.open("memory://d", StoreOptions()).describe().created
