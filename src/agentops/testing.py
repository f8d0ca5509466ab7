"""The test kit for agent authors: run an agent in-process, on a home of its own, with fake time.

::

    from datetime import UTC, datetime

    import httpx
    from agentops.testing import AgentHarness

    def test_greets(tmp_path):
        with AgentHarness("agents/greeter", now=datetime(2026, 11, 22, 9, tzinfo=UTC)) as agent:
            run = agent.run(params={"name": "Ada"})
            assert run.exit_code == 0
            assert run.result == {"greeting": "Hello, Ada!"}
            assert run.events_named("run.finished")

The harness copies the agent's directory (its ``agent.toml``, ``agent.py``,
helpers and data) into a temporary home, so the real configuration and guards
apply and nothing of the real project is touched. What is not the agent's
source stays behind: what its ``.gitignore`` (or the project's) ignores,
such as the outbox its real runs filled, its ``.env`` (the test's
environment is ``env=``) and Python's caches. So a test sees the agent as
written, however often it has run for real. Each :meth:`AgentHarness.run`
is one ``agentops run`` through the whole gatekeeper, with:

- **fake time**: ``agent.clock`` starts at ``now`` and moves only when the
  test (or a retry's wait) moves it, so rate limits, budgets, the breaker and
  staleness are tested without sleeping;
- **a fake HTTP transport**: ``http=`` takes a function from an
  :class:`httpx.Request` to an :class:`httpx.Response` (an
  :class:`httpx.MockTransport` handler), or any transport; ``ctx.http`` and
  ``ctx.llm`` go through it, so no test needs the network;
- **captured log events**: ``run.events`` are the run's log lines, parsed,
  as they would be written.

The state is kept between runs of one harness, like between cron ticks, and
so is ``ctx.memory``: :meth:`AgentHarness.memory` shows what the agent
remembers and the notes it kept, ranked as ``relevant()`` ranks them.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    import httpx

    from agentops.model.outcome import Outcome
    from agentops.model.status import RunStatus
    from agentops.ops.memory import MemoryView
    from agentops.store.base import Store

__all__ = ["AgentHarness", "FakeClock", "TestRun"]


class FakeClock:
    """A clock that moves only when told to: ``clock.advance(minutes=5)``."""

    def __init__(self, now: datetime | None = None) -> None:
        """Start at ``now`` (aware; default 2026-01-01 UTC)."""
        moment = now or datetime(2026, 1, 1, tzinfo=UTC)
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime (tzinfo=UTC)")
        self.now = moment.astimezone(UTC)

    def __call__(self) -> datetime:
        """The current fake time."""
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward (or back, with negative amounts), as ``timedelta`` takes."""
        self.now += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        """Sleep without sleeping: the clock moves on by ``seconds``."""
        self.advance(seconds=max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class TestRun:
    """What one run of the agent did: its outcome, its log lines and the state it left."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name

    outcome: Outcome
    """How the run ended, as ``agentops run`` saw it (status, exit code, message...)."""
    events: list[dict[str, Any]]
    """The run's log lines, parsed, in order."""
    state: dict[str, Any]
    """The agent's ``ctx.state`` as saved after the run (what the next run starts from)."""

    @property
    def exit_code(self) -> int:
        """The outcome's exit code: what ``agentops run`` would have exited with."""
        return self.outcome.exit_code

    @property
    def status(self) -> RunStatus:
        """The outcome's status: ``succeeded``, ``failed``, ``rejected``... as in the state file."""
        return self.outcome.status

    @property
    def result(self) -> dict[str, Any] | None:
        """The Result the run finished with, as logged (None if it produced none)."""
        finished = self.events_named("run.finished")
        result: dict[str, Any] | None = finished[-1].get("result") if finished else None
        return result

    def events_named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name`` (``action.committed``, ``http.request``...)."""
        return [event for event in self.events if event.get("event") == name]


class AgentHarness:
    """One agent on a temporary home of its own, run as cron would run it, in-process."""

    def __init__(
        self,
        agent: str | Path,
        *,
        now: datetime | None = None,
        http: Callable[[httpx.Request], httpx.Response] | httpx.BaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        state: Mapping[str, Any] | None = None,
        home: Path | None = None,
        project_toml: str | None = None,
    ) -> None:
        """Copy the agent's directory ``agent`` into ``home`` (a new temporary one by default).

        ``state`` is the ``ctx.state`` the first run starts from; ``env`` the
        environment the agent sees (its secrets, say), nothing else of yours.
        ``project_toml`` is the home's agentops.toml (its models, say); by
        default the one of the agent's own project, if it has one.
        """
        source = Path(agent)
        if not (source / "agent.toml").is_file():
            raise FileNotFoundError(f"{source}: no agent.toml: pass the agent's directory")
        self.name = source.name
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="agentops-test-")) if home is None else home
        root = source.absolute().parent.parent
        shutil.copytree(
            source.absolute(),
            self.home / "agents" / self.name,
            dirs_exist_ok=True,
            ignore=_NotSource(root, source.absolute()),
        )
        project = root / "agentops.toml"
        if project_toml is not None:
            (self.home / "agentops.toml").write_text(project_toml)
        elif project.is_file():
            shutil.copy(project, self.home / "agentops.toml")
        self.clock = FakeClock(now)
        self.env = dict(env or {})
        self._transport = _transport(http)
        if state is not None:
            self._seed(dict(state))

    def run(self, params: Mapping[str, Any] | None = None, *, dry_run: bool = False) -> TestRun:
        """Run the agent once, through every gate; ``params`` as ``-p`` would give them."""
        from agentops.project.home import Project  # noqa: PLC0415
        from agentops.run.options import RunOptions  # noqa: PLC0415
        from agentops.run.runner import run_agent  # noqa: PLC0415

        log = Project(self.home).log_path(self.name)
        seen = len(log.read_bytes().splitlines()) if log.exists() else 0
        outcome = run_agent(
            Project(self.home),
            self.name,
            overrides=dict(params or {}),
            options=RunOptions(
                dry_run=dry_run,
                clock=self.clock,
                sleep=self.clock.sleep,
                environ=self.env,
                http_transport=self._transport,
            ),
        )
        lines = log.read_bytes().splitlines()[seen:] if log.exists() else []
        return TestRun(outcome, [json.loads(line) for line in lines], self._data())

    def memory(self, search: str | None = None, *, limit: int | None = None) -> MemoryView:
        """What the agent remembers now (by the fake clock): working memory, and its notes.

        The notes are the newest first, or ranked for ``search`` as
        ``ctx.memory.relevant(search, k=limit)`` ranks them::

            assert agent.memory().recall("cursor") == 42
            assert agent.memory(search="disk full").notes[0].importance == 8
        """
        from agentops.ops.memory import DEFAULT_LIMIT, read_memory  # noqa: PLC0415
        from agentops.project.home import Project  # noqa: PLC0415

        return read_memory(
            Project(self.home),
            self.name,
            now=self.clock(),
            search=search,
            limit=DEFAULT_LIMIT if limit is None else limit,
            store=self._store(),
        )

    def _store(self) -> Store:
        # The store the runs use: chosen by the harness's env, not the developer's shell.
        from agentops.project.home import Project  # noqa: PLC0415
        from agentops.store import open_store  # noqa: PLC0415

        return open_store(Project(self.home), environ=self.env)

    def _data(self) -> dict[str, Any]:
        return self._store().load(self.name).data

    def _seed(self, data: dict[str, Any]) -> None:
        from agentops.model.state import AgentState  # noqa: PLC0415

        store = self._store()
        with store.lease(self.name, run_id="seed", ttl_s=60.0) as lease:
            store.commit(lease, AgentState(agent=self.name, data=data))

    def close(self) -> None:
        """Remove the temporary home (one the test passed in is left to it)."""
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        """Use it in a ``with`` block: the temporary home goes at its end."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Remove the temporary home."""
        self.close()


class _NotSource:
    """What the harness leaves behind: ``.gitignore``'d paths, ``.env``, caches.

    Reads the common part of git's patterns, in the agent's ``.gitignore``
    and the project's: a name matches at any depth, a pattern with a ``/``
    from the file's directory, a trailing ``/`` only directories; ``!``
    (putting a path back) is not followed.
    """

    ALWAYS = ("__pycache__", "*.pyc", ".pytest_cache", ".env")

    def __init__(self, *directories: Path) -> None:
        self.rules = [(Path(), pattern) for pattern in self.ALWAYS]
        for directory in directories:
            ignore = directory / ".gitignore"
            if ignore.is_file():
                lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
                self.rules += [(directory, line.strip()) for line in lines if _pattern(line)]

    def __call__(self, directory: str, names: list[str]) -> set[str]:
        """The ``names`` in ``directory`` not to copy (``shutil.copytree``'s ``ignore``)."""
        return {name for name in names if self._ignored(Path(directory, name))}

    def _ignored(self, path: Path) -> bool:
        for base, pattern in self.rules:
            only_dirs = pattern.endswith("/")
            glob = pattern.rstrip("/")
            if only_dirs and not path.is_dir():
                continue
            if "/" in glob:  # from the directory of its .gitignore
                if path.is_relative_to(base) and fnmatch.fnmatchcase(
                    str(path.relative_to(base)), glob.lstrip("/")
                ):
                    return True
            elif fnmatch.fnmatchcase(path.name, glob):
                return True
        return False


def _pattern(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(("#", "!"))


def _transport(
    http: Callable[[httpx.Request], httpx.Response] | httpx.BaseTransport | None,
) -> httpx.BaseTransport | None:
    if http is None or not callable(http):
        return http
    import httpx  # noqa: PLC0415 - only tests that fake HTTP pay for it

    return httpx.MockTransport(http)
