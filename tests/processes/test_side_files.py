"""Whatever stands where agentops expects a file of its own is refused or rebuilt, never waited on.

A FIFO (opening it waits for a writer), a socket, a directory, or JSON
nested 2,000 deep in the place of each file an agent keeps in ``state/``:
``run``, ``status``, ``status --json``, ``ledger`` and ``health`` (the real
executable, each bounded by a timeout that only catches a hang) never exit
70, never hang, and say what is wrong in one line at most. A record
agentops can rebuild (the lock, the tick, the deadline marker, the last
attempt) is moved aside, never deleted, and the run goes on; the state,
the ledger and the pause are left as they are and the run stops with 74.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agentops.store.base import Notices
from suite import AGENTOPS, Project, cron_env, made_once, remember
from suite import plant as plant_special

PUB = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    n: int

def run(params: Params, ctx: Context) -> Result:
    n = ctx.state.get("n", 0) + 1
    ctx.action("post", f"post-{n}", lambda: {"n": n})
    ctx.state["n"] = n
    return Result(n=n)
"""

NESTED = b"[" * 2000 + b"\n"

REBUILT = {".lock", ".attempt.json", ".tick", ".deadline", ".notices.json"}
"""Files a run moves aside when it cannot read them, and goes on without."""

KEPT = {".json": 74, ".ledger.json": 74, ".paused.json": 74}
"""Files left as they are: the run stops with this code."""

KINDS = ["fifo", "socket", "directory", "nested"]


def agentops(project, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), *args],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO waited on would hang: this only catches that
        stdin=subprocess.DEVNULL,
        check=False,
    )
    remember(f"agentops {' '.join(args)}", result.stdout, result.stderr)
    return result


_READER = """\
import json, sys
from click.testing import CliRunner
from agentops.cli import main
home, commands = sys.argv[1], json.loads(sys.argv[2])
said = []
for args in commands:
    done = CliRunner().invoke(
        main, ["--home", home, *args], prog_name="agentops", catch_exceptions=False
    )
    said.append([done.exit_code, done.stdout, done.stderr])
print(json.dumps(said))
"""
"""Runs each reading command through the click app: one process for them all."""


def read_all(project, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Each reading command's result, all run in one process of their own.

    A process, not this one: a FIFO waited on would hang it, and the timeout
    catches that. One for them all: starting Python is most of what each costs.
    """
    driver = subprocess.run(
        [sys.executable, "-c", _READER, str(project.home), json.dumps(commands)],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    remember("agentops reading commands", driver.stdout, driver.stderr)
    assert driver.returncode == 0, driver.stderr  # an exception escaped a command
    return [
        subprocess.CompletedProcess(["agentops", *args], code, out, err)
        for args, (code, out, err) in zip(commands, json.loads(driver.stdout), strict=True)
    ]


def plant(path: Path, kind: str) -> None:
    """Put a ``kind`` where ``path`` is (whatever was there is removed first)."""
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
    if kind == "nested":
        path.write_bytes(NESTED)
    else:
        plant_special(path, kind)


def kind_at(path: Path) -> str:
    mode = path.lstat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "nested" if path.read_bytes() == NESTED else "file"


def assert_said_in_one_line(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 70, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.splitlines()) <= 1, result.stderr


def after_one_run(root: Path) -> None:
    """The agent ``pub`` after one scheduled run, at ``root/home``: built once, copied by each test.

    A copy must not point back here, so nothing in the home may name where
    it is: what the run wrote (state, ledger, lock, tick, attempt, log) names
    no path, and the check below keeps that true. Only the agent's bytecode
    cache held one (its source's path, which Python corrects when it loads
    the cache): it is left out all the same, and each copy compiles its own.
    """
    project = Project(root / "home")
    (project.home / "agents").mkdir(parents=True)
    project.add_agent("pub", PUB, 'schedule = "@hourly"\n')
    first = agentops(project, "run", "pub", "--scheduled")
    assert first.returncode == 0, first.stderr
    (project.home / "state" / "pub.notices.json").write_text(Notices().model_dump_json() + "\n")
    shutil.rmtree(project.home / "agents" / "pub" / "__pycache__", ignore_errors=True)
    here = {bytes(root), bytes(root.resolve())}
    naming = [
        path
        for path in sorted(project.home.rglob("*"))
        if path.is_file() and any(name in path.read_bytes() for name in here)
    ]
    assert naming == [], f"a copy of the home would point back at it: {naming}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The home after the one real first run of the session (:func:`after_one_run`)."""
    return Project(made_once(tmp_path_factory.getbasetemp(), "side-files", after_one_run) / "home")


@pytest.fixture
def pub(built, tmp_path):
    """The agent after one scheduled run: its state, ledger, tick, lock and attempt exist."""
    return built.copy(tmp_path / "home")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", sorted(REBUILT | set(KEPT)))
def test_anything_in_a_side_files_place_is_refused_or_rebuilt_never_waited_on(pub, suffix, kind):
    """run, status, status --json, ledger and health: never 70, never a hang, one line at most."""
    state = pub.home / "state"
    path = state / f"pub{suffix}"
    plant(path, kind)
    read = read_all(pub, ("status",), ("status", "--json"), ("ledger", "pub"), ("health",))
    for result in read:
        assert_said_in_one_line(result)
    json.loads(read[1].stdout)  # a whole document, whatever it says

    run = agentops(pub, "run", "pub", *(("--scheduled",) if suffix == ".tick" else ()))
    assert_said_in_one_line(run)
    if suffix in KEPT:
        assert run.returncode == KEPT[suffix]
        assert str(path) in run.stderr
        assert kind_at(path) == kind, "left as it is"
        return
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    moved = [e for e in pub.events("pub") if e["event"] == "file.moved_aside"]
    aside = sorted(state.glob(f"pub{suffix}.unreadable-*"))
    if suffix == ".notices.json":
        assert moved == [], "only notifying reads or writes it"
    elif kind != "nested" or suffix == ".tick":
        [event] = moved
        assert event["path"] == str(path)
        assert [Path(event["moved_to"])] == aside
        assert kind_at(aside[0]) == kind, "moved, never deleted"
    [status] = read_all(pub, ("status", "--json"))
    assert status.returncode == 0
    assert json.loads(status.stdout)[0]["health"] == "ok"
    again = agentops(pub, "run", "pub")
    assert again.returncode == 0, again.stderr


def test_a_lock_holding_nested_json_neither_stops_a_run_nor_status(pub):
    """2,000 nested brackets in the lock: the run takes it and rewrites it; status reads it."""
    lock = pub.home / "state" / "pub.lock"
    lock.write_bytes(NESTED)
    status = agentops(pub, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["running"] is None
    run = agentops(pub, "run", "pub")
    assert (run.returncode, run.stderr) == (0, "")
    assert set(json.loads(lock.read_text())) == {"token"}, "rewritten, and released"
