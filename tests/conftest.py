"""Shared fixtures: a project on tmp_path, agents written into it, and ways to run agentops.

``run_agentops`` starts the real ``agentops`` executable as a subprocess, under
cron's minimal environment unless told otherwise. ``invoke`` runs the click
app in-process (``CliRunner``) for fast checks of output and exit codes.
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

import pytest
from click.testing import CliRunner

from agentops.cli import main

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
    """The environment cron gives a job: almost nothing."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", **extra}


@pytest.fixture
def run_agentops(project: Project):
    """Run the real agentops executable as cron would: a subprocess, minimal env, no TTY."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AGENTOPS), "--home", str(project.home), *args],
            env=env if env is not None else cron_env(project.home),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


@pytest.fixture
def invoke(project: Project):
    """Run the click app in-process against the project."""

    def run(*args: str, env: dict[str, str] | None = None):
        runner = CliRunner()
        return runner.invoke(main, ["--home", str(project.home), *args], env=env)

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


@pytest.fixture(autouse=True)
def _no_secrets_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the environment they set up, not the machine's secrets."""
    for name in list(os.environ):
        if name.endswith(("_KEY", "_TOKEN", "_SECRET")) or "PASSWORD" in name:
            monkeypatch.delenv(name)
