"""A store driven from another process, one command a line: the other host of the store tests.

``python storeprocess.py WHERE AGENT`` opens the store at ``WHERE`` (a
directory: the file store; a ``postgresql://`` URL: the PostgreSQL store)
and reads commands on stdin, answering each with one line: ``ok``, a value,
or the name of the exception it raised.

- ``lease RUN_ID TTL_S``: take the agent's lease (and keep it), answers its token;
- ``journal COUNT``: start the run's journal, append :func:`records` ``(RUN_ID, COUNT)``;
- ``commit``: commit a state whose data names the run;
- ``release``: leave the lease's block.

:class:`StoreProcess` starts one and talks to it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentops.store.base import Store

__all__ = ["StoreProcess", "open_at", "records"]

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def open_at(where: str) -> Store:
    """The store at ``where``: a postgresql:// URL, or a directory of files."""
    if where.startswith("postgresql://"):
        from agentops.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(where)
    from agentops.store.file import FileStore  # noqa: PLC0415

    return FileStore(Path(where))


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


def main(where: str, agent: str) -> None:
    """Answer commands on stdin until it closes."""
    from agentops.model.state import AgentState  # noqa: PLC0415

    store = open_at(where)
    lease: Any = None
    hold: contextlib.ExitStack | None = None
    run_id = ""
    for line in sys.stdin:
        command, *args = line.split()
        try:
            if command == "lease":
                run_id, ttl_s = args[0], float(args[1])
                hold = contextlib.ExitStack()
                lease = hold.enter_context(store.lease(agent, run_id=run_id, ttl_s=ttl_s))
                answer = f"token {lease.token}"
            elif command == "journal":
                journal = store.journal(lease, run_id)
                found = records(run_id, int(args[0]), agent)
                for index, record in enumerate(found):
                    journal.append(record, durable=index < len(found) - 1)
                answer = "ok"
            elif command == "commit":
                store.commit(lease, AgentState(agent=agent, data={"by": run_id}))
                answer = "ok"
            elif command == "release":
                assert hold is not None
                hold.close()
                answer = "ok"
            else:
                answer = f"unknown command {command}"
        except Exception as exc:  # noqa: BLE001 - the answer names it
            answer = type(exc).__name__
        print(answer, flush=True)  # noqa: T201 - the answer goes to the test


if __name__ == "__main__":
    main(*sys.argv[1:3])
