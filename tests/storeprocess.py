"""A store driven from another process, one command a line: the other host of the store tests.

``python storeprocess.py WHERE AGENT`` opens the store at ``WHERE`` through
the registry of backends (a directory: the file store; a ``postgresql://``
URL: the PostgreSQL store) and reads commands on stdin, answering each with
one line: ``ok``, a value, or the name of the exception it raised.

- ``lease RUN_ID TTL_S``: take the agent's lease (and keep it), answers its token;
- ``journal COUNT``: start the run's journal, append :func:`records` ``(RUN_ID, COUNT)``;
- ``commit``: commit a state whose data names the run;
- ``release``: leave the lease's block;
- ``slot GROUP LIMIT``: try to take a slot of the group (and keep it), answers ``held`` or ``full``.

:class:`StoreProcess` starts one and talks to it; :class:`InProcessRun` answers
the same commands in this process, for a store only this process can see.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentops.store.base import Store

__all__ = ["InProcessRun", "StoreCommands", "StoreProcess", "open_at", "records"]

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def open_at(where: str) -> Store:
    """The store at ``where``, opened by the backend its scheme names; a directory: files."""
    from agentops.store import StoreOptions, backend_for  # noqa: PLC0415

    backend = backend_for(where)
    if backend is None:
        raise ValueError(f"no store backend for {where}")
    return backend.open(where, StoreOptions())


def records(run_id: str, count: int, agent: str = "pub") -> list[BaseModel]:
    """A run's journal: its begin, then ``count`` spends of 1, 2, ... cents."""
    from agentops.model.journal import Begin, Spend  # noqa: PLC0415

    return [
        Begin(run_id=run_id, at=T0, agent=agent),
        *(Spend(run_id=run_id, at=T0, usd=n / 100) for n in range(1, count + 1)),
    ]


class StoreProcess:
    """Another process using the same store: a command, an answer."""

    def __init__(self, where: str, agent: str = "pub") -> None:
        """Start it on the store at ``where``, for ``agent``."""
        self.process = subprocess.Popen(
            [sys.executable, __file__, where, agent],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid

    def send(self, command: str) -> str:
        """Send one command; its answer."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def kill(self) -> None:
        """SIGKILL it, and wait for it to be gone."""
        self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        """End it if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class StoreCommands:
    """The commands answered against one store: what the other process runs, line by line."""

    def __init__(self, store: Store, agent: str) -> None:
        """Answer for ``agent`` on ``store``."""
        self.store = store
        self.agent = agent
        self.lease: Any = None
        self.hold: contextlib.ExitStack | None = None
        self.run_id = ""

    def answer(self, line: str) -> str:  # noqa: PLR0911 - one return a command
        """Run one command; ``ok``, a value, or the name of the exception it raised."""
        from agentops.model.state import AgentState  # noqa: PLC0415

        command, *args = line.split()
        try:
            if command == "lease":
                self.run_id, ttl_s = args[0], float(args[1])
                self.hold = contextlib.ExitStack()
                self.lease = self.hold.enter_context(
                    self.store.lease(self.agent, run_id=self.run_id, ttl_s=ttl_s)
                )
                return f"token {self.lease.token}"
            if command == "journal":
                journal = self.store.journal(self.lease, self.run_id)
                found = records(self.run_id, int(args[0]), self.agent)
                for index, record in enumerate(found):
                    journal.append(record, durable=index < len(found) - 1)
                return "ok"
            if command == "commit":
                state = AgentState(agent=self.agent, data={"by": self.run_id})
                self.store.commit(self.lease, state)
                return "ok"
            if command == "slot":
                slots = self.hold = self.hold or contextlib.ExitStack()
                held = slots.enter_context(self.store.group_slot(args[0], int(args[1])))
                return "held" if held else "full"
            if command == "release":
                assert self.hold is not None
                self.hold.close()
                return "ok"
        except Exception as exc:  # noqa: BLE001 - the answer names it
            return type(exc).__name__
        return f"unknown command {command}"


class InProcessRun:
    """Another run on the same store in this process: for a store no other process sees.

    It answers as :class:`StoreProcess` does, with this process's pid; it
    cannot be killed (a store in memory dies with its process: nothing is
    left to look at), so a test that kills it is skipped there.
    """

    def __init__(self, where: str, agent: str = "pub") -> None:
        """Open another store object on ``where``, for ``agent``."""
        self.commands = StoreCommands(open_at(where), agent)
        self.pid = os.getpid()

    def send(self, command: str) -> str:
        """Run one command; its answer."""
        return self.commands.answer(command)

    def kill(self) -> NoReturn:
        """Skip the test: what a death leaves behind is no promise of a store in memory."""
        import pytest  # noqa: PLC0415 - only a test calls it

        pytest.skip("a store in one process's memory dies with it: no death to survive")

    def close(self) -> None:
        """Leave the lease's block if it is still held."""
        if self.commands.hold is not None:
            self.commands.hold.close()


def main(where: str, agent: str) -> None:
    """Answer commands on stdin until it closes."""
    commands = StoreCommands(open_at(where), agent)
    for line in sys.stdin:
        print(commands.answer(line), flush=True)  # noqa: T201 - the answer goes to the test


if __name__ == "__main__":
    main(*sys.argv[1:3])
