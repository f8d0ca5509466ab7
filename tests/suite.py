"""What the suite's tests share: a project home on tmp_path, and ways to run agentops in it.

The fixtures in ``conftest.py`` hand these out (``project``, ``clock``,
``run_agentops``, ``invoke``); a test imports from here what it builds
itself (``cron_env`` for a subprocess of its own, ``AGENTOPS``, ``HELLO``).

Time is :class:`agentops.testing.FakeClock`, the kit agent authors use: the
suite uses the public kit itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentops.testing import FakeClock
from leakscan import FAKE_SECRETS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from click.testing import Result

    from agentops.model.money import Budget, BudgetEntry
    from agentops.model.outcome import Outcome

__all__ = [
    "AGENTOPS",
    "DEAD_BEGIN",
    "HELLO",
    "HTTP_AGENT",
    "MADE_OUTSIDE",
    "MEMO",
    "PRINTED",
    "RECONCILED",
    "REPO",
    "SPENDING_AGENT",
    "STUBBORN",
    "T0",
    "FakeClock",
    "Project",
    "Waits",
    "add_http_agent",
    "agent_source",
    "budget_of",
    "cron_env",
    "crontab_now",
    "dead_commit",
    "dead_intent",
    "eventually",
    "invoke_cli",
    "logged",
    "made_once",
    "memory_path",
    "one_line",
    "plant",
    "remember",
    "said_one_line",
    "spend",
    "stored_notes",
    "write_journal",
]

REPO = Path(__file__).resolve().parent.parent
AGENTOPS = Path(sys.executable).parent / "agentops"
"""The real ``agentops`` executable of this virtual environment."""

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""Where the ``clock`` fixture starts: a Sunday noon, UTC."""

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

    def run(
        self, name: str = "agent", *, overrides: Mapping[str, Any] | None = None, **options: Any
    ) -> Outcome:
        """``agentops run NAME`` in-process, through every gate; ``options`` as RunOptions takes.

        The run sees no environment but the session's fake secrets, unless
        ``environ`` is given. Given a :class:`FakeClock`, its waits (a retry's,
        a rate limit's) move that clock instead of sleeping, unless ``sleep`` is given.
        """
        from agentops.project.home import Project as Home  # noqa: PLC0415
        from agentops.run.runner import run_agent  # noqa: PLC0415

        options.setdefault("environ", {})
        if isinstance(options.get("clock"), FakeClock):
            options.setdefault("sleep", options["clock"].sleep)
        return run_agent(Home(self.home), name, overrides=overrides, **options)

    def copy(self, destination: Path) -> Project:
        """A copy of this home at ``destination``: one home built once, used by many tests."""
        shutil.copytree(self.home, destination, symlinks=True)
        return Project(destination)

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


def agent_source(
    run: str,
    *,
    params: str = "",
    result: str = "ok: bool = True",
    imports: str = "",
    extra: str = "",
) -> str:
    """The ``agent.py`` of a test: its Params and Result fields, and the body of its ``run()``.

    ::

        agent_source(
            '''
            ctx.spend(usd=params.usd)
            return Result()
            ''',
            params="usd: float = 0.1",
        )

    ``imports`` go first (``import time``); ``extra`` is module code after ``run()``
    (a helper, ``validate()``, ``reconcile()``...). Each piece may be indented
    as it reads best in the test: it is dedented here.
    """
    parts = [
        textwrap.dedent(imports).strip(),
        "from pydantic import BaseModel\nfrom agentops import Context",
        "class Params(BaseModel):\n" + _indented(params or "pass"),
        "class Result(BaseModel):\n" + _indented(result or "pass"),
        "def run(params: Params, ctx: Context) -> Result:\n" + _indented(run),
        textwrap.dedent(extra).strip(),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _indented(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip(), "    ")


def invoke_cli(
    home: Path, *args: str, env: Mapping[str, str] | None = None, where: str = ""
) -> Result:
    """``agentops --home HOME ARGS`` in-process: the click app, named ``agentops`` as installed.

    What it printed is remembered (``where`` says who asked), for the scan for secrets.
    """
    from click.testing import CliRunner  # noqa: PLC0415 - only tests that invoke pay for it

    from agentops.cli import main  # noqa: PLC0415

    result = CliRunner().invoke(main, ["--home", str(home), *args], env=env, prog_name="agentops")
    said = f"{where}: agentops {' '.join(args)} (in-process)"
    remember(f"{said}: stdout", result.stdout)
    remember(f"{said}: stderr", result.stderr)
    return result


def cron_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment cron gives a job: almost nothing, and the session's fake secrets."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", **FAKE_SECRETS, **extra}


PRINTED: list[tuple[str, str]] = []
"""(what printed it, the text) of every output the suite captured: scanned at the end."""


def plant(path: Path, kind: str) -> None:
    """Put a ``fifo``, a ``socket`` or a ``directory`` at ``path``, where nothing is."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":  # bound from inside the directory: a socket's path is short
        code = (
            "import os, socket, sys; os.chdir(sys.argv[1]); "
            "socket.socket(socket.AF_UNIX).bind(sys.argv[2])"
        )
        subprocess.run([sys.executable, "-c", code, str(path.parent), path.name], check=True)
    elif kind == "directory":
        path.mkdir()
    else:
        raise ValueError(f"not a kind of file to plant: {kind}")


def remember(where: str, *texts: str | bytes | None) -> None:
    """Keep what a command printed, for the scan for secrets at the end of the session."""
    for text in texts:
        decoded = text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text
        PRINTED.append((where, decoded or ""))


def made_once(base: Path, name: str, make: Callable[[Path], None]) -> Path:
    """``name`` in the session's directory, made by ``make`` for the first worker that asks.

    ``base`` is a worker's base temporary directory (``tmp_path_factory.getbasetemp()``):
    pytest-xdist puts each worker's under the session's, where what is made
    is shared. The others wait for it (a lock), and use it. A ``make`` that
    fails leaves nothing: the next to ask tries again, and fails alike.
    """
    shared = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    root = base.parent if shared else base
    path = root / name
    with (root / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (path / ".made").exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            (path / ".made").touch()
            if shared:  # outside every worker's own directory: its maker scans it
                MADE_OUTSIDE.append(path)
    return path


MADE_OUTSIDE: list[Path] = []
"""What :func:`made_once` made outside this worker's base directory: scanned for secrets too."""


def eventually(check: Callable[[], bool], *, within_s: float = 120.0) -> bool:
    """Whether ``check()`` comes true within ``within_s`` seconds, looking every 50 ms.

    For a wait on another process (a server noticing a death, a file
    appearing): the deadline only bounds a hang, so it is generous; a busy
    machine makes the wait longer, never the test fail.
    """
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


SPENDING_AGENT = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    usd: float = 0.3
    tokens: int = 0
    calls: int = 10
    pause: float = 0.0
    gate: str = ""

class Result(BaseModel):
    calls: int

def run(params: Params, ctx: Context) -> Result:
    while params.gate and not Path(params.gate).exists():
        time.sleep(0.01)
    for _ in range(params.calls):
        ctx.spend(usd=params.usd, tokens=params.tokens)
        time.sleep(params.pause)
    return Result(calls=params.calls)
"""
"""An agent that spends ``usd`` and ``tokens`` ``calls`` times, ``pause`` seconds apart.

Given a ``gate`` (a path), it holds its lock until that file exists.
"""


class Waits(list[float]):
    """A run's ``sleep`` on a fake clock: each wait is remembered, and moves the clock."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.clock.sleep(seconds)


HTTP_AGENT = agent_source(
    """
    response = ctx.http.get(params.url, timeout=params.timeout)
    response.raise_for_status()
    return Result(status=response.status_code, body=response.json())
    """,
    params="url: str\ntimeout: float = 5.0",
    result="status: int\nbody: dict",
)
"""An agent that GETs ``url`` (a client ``timeout``) and returns the JSON it got."""


def add_http_agent(
    project: Project,
    name: str,
    url: str,
    *,
    attempts: int = 3,
    max_wait: str = "2s",
    timeout: float = 5.0,
    toml: str = "",
) -> None:
    """:data:`HTTP_AGENT` as ``name``, GETting ``url`` once per attempt, retried after 0.05s."""
    project.add_agent(
        name,
        HTTP_AGENT,
        f'{toml}[params]\nurl = "{url}"\ntimeout = {timeout}\n'
        f'[retry]\nattempts = {attempts}\ninitial = "0.05s"\nmax = "{max_wait}"\n',
    )


def logged(project: Project, name: str, event: str) -> list[dict[str, Any]]:
    """The agent's log lines called ``event``, in order."""
    return [line for line in project.events(name) if line["event"] == event]


def one_line(result: Any, project: Project, name: str) -> str:
    """The one stderr line of a failed command (a process's or ``invoke``'s), naming the log."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"agentops: {name}: ")
    assert lines[0].endswith(f"(log: {project.log_path(name)})")
    assert result.stdout == ""
    return str(lines[0])


def said_one_line(result: Any, *expected: str) -> None:
    """Nothing on stdout, one ``agentops: ...`` line on stderr holding each of ``expected``."""
    assert result.stdout == "", result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("agentops: ")
    for text in expected:
        assert text in result.stderr


# -- what a run that died leaves -------------------------------------------------------


def write_journal(project, name, *records):
    """A journal as a run that died would leave it."""
    lines = [
        json.dumps(
            {
                "run_id": "20261122T100000Z-dead00",
                **({"agent": name} if r["op"] == "begin" else {}),
                **r,
            }
        )
        for r in records
    ]
    path = project.home / "state" / f"{name}.journal"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


DEAD_BEGIN = {"op": "begin", "at": "2026-11-22T10:00:00Z", "kind": "run"}


def dead_intent(key, action="effect", second=1):
    return {"op": "intent", "at": f"2026-11-22T10:00:0{second}Z", "action": action, "key": key}


def dead_commit(key, action="effect", second=2):
    return {**dead_intent(key, action, second), "op": "commit", "result": {"key": key}}


RECONCILED = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    results: list

def run(params: Params, ctx: Context) -> Result:
    return Result(results=[ctx.action("effect", key=k, do=lambda: "fresh") for k in "ab"])

def reconcile(name, key, ctx):
    return {"found": key} if key == "a" else True
"""


# -- an agent with a memory, driven by its params ------------------------------------------


MEMO = """
from typing import Any
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    remember: dict[str, Any] = {}
    ttl: str | float | None = None
    forget: list[str] = []
    recall: list[str] = []
    note: list[str] = []
    importance: int = 5
    tags: list[str] = []
    search: str | None = None
    k: int = 5

class Result(BaseModel):
    recalled: dict[str, Any]
    found: list[str]

def run(params: Params, ctx: Context) -> Result:
    recalled = {key: ctx.memory.recall(key) for key in params.recall}
    for key, value in params.remember.items():
        ctx.memory.remember(key, value, ttl=params.ttl)
    for key in params.forget:
        ctx.memory.forget(key)
    for text in params.note:
        ctx.memory.note(text, tags=params.tags, importance=params.importance)
    found = []
    if params.search is not None:
        found = [n.text for n in ctx.memory.relevant(params.search, k=params.k)]
    return Result(recalled=recalled, found=found)
"""
"""An agent driven by its params: what to remember, note, recall and search."""


def memory_path(project, name="memo") -> Path:
    return project.home / "state" / f"{name}.memory.sqlite"


def stored_notes(project, name="memo") -> list[str]:
    """The texts in the notes file, oldest first (read with plain sqlite3)."""
    path = memory_path(project, name)
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT text FROM notes ORDER BY at, id")]
    finally:
        db.close()


# -- the user's real crontab ---------------------------------------------------------------


def crontab_now() -> str:
    return subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout


# -- money -----------------------------------------------------------------------------------


def spend(minutes_ago: float, usd: float, now: datetime = T0) -> BudgetEntry:
    """A spend that many minutes before ``now`` (negative: after it)."""
    from agentops.model.money import BudgetEntry  # noqa: PLC0415

    return BudgetEntry(at=now - timedelta(minutes=minutes_ago), run_id="r", usd=usd)


def budget_of(*spends: BudgetEntry) -> Budget:
    """A budget holding ``spends``, as the state file is read back."""
    from agentops.model.money import Budget  # noqa: PLC0415

    return Budget(spends=list(spends))


# -- agents the hard deadline ends ------------------------------------------------------------

STUBBORN = agent_source(
    """
    (ctx.home / "started").write_text("")
    while True:
        try:
            time.sleep(0.2)
        except:  # noqa: E722 - swallows even the stop
            pass
    """,
    result="total: int",
    imports="import time",
)
"""Agent code that swallows every stop (it says it started): only abandoning ends it."""
