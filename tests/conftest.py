"""Shared fixtures: a project on tmp_path, agents written into it, and ways to run agentops.

``run_agentops`` starts the real ``agentops`` executable as a subprocess, under
cron's minimal environment unless told otherwise. ``invoke`` runs the click
app in-process (``CliRunner``) for fast checks of output and exit codes.

Secrets: the whole session runs with known fake secrets
(:data:`leakscan.FAKE_SECRETS`) and none of the machine's. They reach every run:

- in-process code reads them from ``os.environ``, where they are for the whole
  session (the machine's secret-named variables are removed);
- every subprocess gets them: :func:`cron_env` holds them, and
  ``run_agentops`` adds them to any ``env`` it is given;
- in-process runs (``run_agent`` and ``approve_held``) also get them in
  ``RunOptions.environ``, as a run started by the CLI does (it passes
  ``os.environ``): tests pass ``environ={}`` to keep the machine's
  configuration out, and :func:`_fake_secrets_in_run_options` merges the fakes
  into any explicit mapping, so no test has to remember to.

Everything ``run_agentops`` and ``invoke`` print is remembered
(:func:`remember`), and at the end of the session (``pytest_sessionfinish``)
every file under pytest's base temporary directory and every remembered
output is scanned for each fake secret in every form it may be written in. A
hit fails the session (exit 1) with a report naming the file and the form.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from agentops._infra.redact import is_secret_env_name
from agentops.cli import main
from agentops.run.invocation import Invocation
from leakscan import FAKE_SECRETS, Leak, scan_text, scan_tree

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
AGENTOPS = Path(sys.executable).parent / "agentops"

HELLO = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    name: str = "world"

class Result(BaseModel):
    greeting: str

def run(params: Params, ctx: Context) -> Result:
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(greeting=f"Hello, {params.name}!")
"""


@dataclass
class Project:
    """A home directory on tmp_path, with helpers to add agents and inspect files."""

    home: Path

    def add_agent(self, name: str, code: str = HELLO, toml: str = "") -> Path:
        """Write agents/<name>/agent.py and agent.toml (both dedented)."""
        directory = self.home / "agents" / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "agent.py").write_text(textwrap.dedent(code))
        (directory / "agent.toml").write_text(textwrap.dedent(toml))
        return directory

    def state_path(self, name: str) -> Path:
        return self.home / "state" / f"{name}.json"

    def state(self, name: str) -> dict:
        return json.loads(self.state_path(name).read_text())

    def ledger(self, name: str) -> dict:
        """The entries of the agent's ledger file (action -> key -> entry line)."""
        path = self.home / "state" / f"{name}.ledger.json"
        return json.loads(path.read_text())["entries"] if path.exists() else {}

    def log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.jsonl"

    def events(self, name: str) -> list[dict]:
        """Every log line of the agent, parsed."""
        path = self.log_path(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def event_names(self, name: str) -> list[str]:
        return [event["event"] for event in self.events(name)]

    def snapshot(self, subdir: str = "state") -> dict[str, str]:
        """Name -> sha256 of every file under home/<subdir>: to prove nothing changed.

        Lock files and the last attempt are left out: every invocation writes
        them, by design (the holder's pid; when it was tried and how it ended).
        """
        root = self.home / subdir
        if not root.exists():
            return {}
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".lock" and not p.name.endswith(".attempt.json")
        }


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project: a home with an agents/ directory."""
    home = tmp_path / "home"
    (home / "agents").mkdir(parents=True)
    return Project(home)


def cron_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment cron gives a job: almost nothing, and the session's fake secrets."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", **FAKE_SECRETS, **extra}


PRINTED: list[tuple[str, str]] = []
"""(what printed it, the text) of every output the suite captured: scanned at the end."""


def remember(where: str, *texts: str | bytes | None) -> None:
    """Keep what a command printed, for the scan for secrets at the end of the session."""
    for text in texts:
        decoded = text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text
        PRINTED.append((where, decoded or ""))


@pytest.fixture
def run_agentops(project: Project, request: pytest.FixtureRequest):
    """Run the real agentops executable as cron would: a subprocess, minimal env, no TTY."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(AGENTOPS), "--home", str(project.home), *args],
            env={**FAKE_SECRETS, **env} if env is not None else cron_env(project.home),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        where = f"{request.node.nodeid}: agentops {' '.join(args)}"
        remember(f"{where}: stdout", result.stdout)
        remember(f"{where}: stderr", result.stderr)
        return result

    return run


@pytest.fixture
def invoke(project: Project, request: pytest.FixtureRequest):
    """Run the click app in-process against the project."""

    def run(*args: str, env: dict[str, str] | None = None):
        runner = CliRunner()
        result = runner.invoke(main, ["--home", str(project.home), *args], env=env)
        where = f"{request.node.nodeid}: agentops {' '.join(args)} (in-process)"
        remember(f"{where}: stdout", result.stdout)
        remember(f"{where}: stderr", result.stderr)
        return result

    return run


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- secrets ---------------------------------------------------------------------------

_BASETEMP = pytest.StashKey[Path]()
_LEAKS = pytest.StashKey[list[Leak]]()


def _secret_named(name: str) -> bool:
    # agentops' own rule, and a wider one: the machine's secrets stay out either way.
    return is_secret_env_name(name) or name.endswith(("_KEY", "_TOKEN", "_SECRET", "_PAT"))


def _only_fake_secrets(patch: pytest.MonkeyPatch) -> None:
    # Every secret-named variable goes, but the fakes, which are (re)set.
    for name in list(os.environ):
        if _secret_named(name) and os.environ[name] != FAKE_SECRETS.get(name):
            patch.delenv(name)
    for name, value in FAKE_SECRETS.items():
        patch.setenv(name, value)


@pytest.fixture(scope="session", autouse=True)
def _fake_secrets_for_the_session(tmp_path_factory: pytest.TempPathFactory, request):
    """The session's environment holds the fake secrets, and none of the machine's."""
    request.config.stash[_BASETEMP] = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        _only_fake_secrets(patch)
        yield


@pytest.fixture(autouse=True)
def _no_secrets_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the fake secrets only, whatever an earlier agent set."""
    _only_fake_secrets(monkeypatch)


@pytest.fixture(autouse=True)
def _fake_secrets_in_run_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs given an ``environ`` get the fake secrets in it, as CLI runs do."""
    init = Invocation.__init__

    def with_fakes(self: Invocation, project, name: str, options) -> None:
        if options.environ is not None:
            options = options._replace(environ={**FAKE_SECRETS, **options.environ})
        init(self, project, name, options)

    monkeypatch.setattr(Invocation, "__init__", with_fakes)


def find_leaks(basetemp: Path | None) -> list[Leak]:
    """The fake secrets in every file under ``basetemp`` and in every output remembered."""
    leaks = scan_tree(basetemp) if basetemp is not None and basetemp.is_dir() else []
    for where, text in PRINTED:
        leaks += scan_text(text, where)
    return leaks


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook may remove the temporary files
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Scan what the session wrote and printed; a secret found fails the session."""
    leaks = find_leaks(session.config.stash.get(_BASETEMP, None))
    session.config.stash[_LEAKS] = leaks
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Report the secrets found, one line each, under a red header."""
    leaks = config.stash.get(_LEAKS, [])
    if not leaks:
        return
    terminalreporter.write_sep("=", f"{len(leaks)} fake secrets leaked", red=True, bold=True)
    for leak in leaks:
        terminalreporter.write_line(f"LEAKED {leak}")
    terminalreporter.write_line("the session fails (exit 1): no file or output may hold a secret")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of the suite's own (tests/pgserver.py), for the session."""
    from pgserver import PostgresServer  # noqa: PLC0415 - only PostgreSQL tests start it

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
