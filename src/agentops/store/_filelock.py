"""The file store's locks: what an agent's lease and a group's slots are made of.

Each is an ``flock`` on a file, which the kernel releases when its process
dies. ``<name>.lock`` also names its holder (pid, host, run id, since) and
the fencing token, which grows with each holder and stays when the run
ends; a lock held while the file names no live run is a ``stray`` holder.
A forked copy of the process drops its copies of the leases' descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentops._infra import procs
from agentops._infra.clock import utcnow
from agentops._infra.files import SIDE_FILE_LIMIT, load_json
from agentops._infra.fs import FileSystem, describe
from agentops._infra.timestamps import iso
from agentops.errors import LeaseLost, StateError
from agentops.store.base import Holder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class FileLease:
    """An exclusive ``flock`` on ``<name>.lock``: released by the kernel when the process dies.

    Only by this process: a process it forks (``multiprocessing``, a daemon
    that double-forks) has its copy of the descriptor closed at once, so
    one that outlives the run never keeps the agent's lock (the lease is
    lost there: :meth:`check` raises ``LeaseLost``).
    """

    def __init__(self, agent: str, fd: int, token: int) -> None:
        """Held through the open descriptor ``fd``."""
        self.agent = agent
        self.token = token
        self.fd: int | None = fd
        self.kept = False
        self.forked = False
        """True in a forked copy of the process: the descriptor was closed there."""
        _HELD.add(self)
        _drop_leases_in_forked_children()

    def release(self) -> None:
        """Close the descriptor, releasing the ``flock`` (nothing in a forked copy)."""
        fd, self.fd = self.fd, None
        _HELD.discard(self)
        if fd is not None and not self.forked:
            os.close(fd)

    def keep_until_exit(self) -> None:
        """Hold the lock until this process exits."""
        self.kept = True

    def check(self) -> None:
        """A local lock cannot lapse while its process lives; only a released one is lost."""
        if self.forked:
            raise LeaseLost(
                f"{self.agent}: a forked process holds no lease of the run's", agent=self.agent
            )
        if self.fd is None:
            raise LeaseLost(f"{self.agent}: the run's lock was released", agent=self.agent)


_HELD: set[FileLease] = set()
"""The leases this process holds."""


@functools.cache
def _drop_leases_in_forked_children() -> None:
    # Registered once (a registration cannot be undone). Closing the child's
    # copy of the descriptor leaves the parent's flock as it is: the lock
    # belongs to the open file, and goes only when its last descriptor does.
    os.register_at_fork(after_in_child=_drop_leases)


def _drop_leases() -> None:
    for lease in list(_HELD):
        if lease.fd is not None:
            with contextlib.suppress(OSError):
                os.close(lease.fd)
        lease.fd, lease.forked = None, True
    _HELD.clear()


def write_lock(
    fs: FileSystem, fd: int, *, token: int, pid: int | None = None, run_id: str = ""
) -> None:
    """Make ``<name>.lock`` name its holder (``pid`` and ``run_id``), or only the token."""
    document: dict[str, Any] = {"token": token}
    if pid is not None:
        document |= {
            "pid": pid,
            "host": socket.gethostname(),
            "run_id": run_id,
            "since": iso(utcnow()),
        }
    fs.rewrite(fd, json.dumps(document).encode() + b"\n")


def lock_holder(fs: FileSystem, path: Path) -> Holder | None:
    """The pid and run holding the lock at ``path``, if a live process holds it.

    A lock held while the file names no live run (a process a run left
    behind keeps it through an inherited descriptor, or another tool
    took it) is a ``stray`` holder: every run is skipped until it ends.
    """
    holder = _named_holder(fs, path)
    if holder is not None and holder.pid and alive(holder.pid):
        return holder
    if not procs.flock_holders(path):
        return None
    again = _named_holder(fs, path)  # a run may have just taken it and not said so yet
    if again is not None and again.pid and alive(again.pid):
        return again
    others = [pid for pid in procs.holding_open(path) if pid != os.getpid()]
    try:
        since = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        since = utcnow()
    return Holder(
        pid=others[0] if others else 0,
        host=socket.gethostname(),
        run_id=again.run_id if again is not None else "",
        since=since,
        token=again.token if again is not None else 0,
        stray=True,
    )


def _named_holder(fs: FileSystem, path: Path) -> Holder | None:
    try:
        raw = fs.read(path, limit=SIDE_FILE_LIMIT)
    except OSError:
        return None
    return read_holder(raw or b"")


@contextlib.contextmanager
def group_slot(fs: FileSystem, directory: Path, group: str, limit: int) -> Iterator[bool]:
    """Try each slot of the group: an ``flock`` on ``<directory>/.group.<group>.<slot>.lock``."""
    try:
        fs.mkdir(directory)
    except OSError as exc:
        raise StateError(f"{directory}: cannot create: {describe(exc)}") from exc
    for slot in range(limit):
        path = directory / f".group.{group}.{slot}.lock"
        try:
            fd = fs.open(path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StateError(f"{path}: cannot open lock: {describe(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            os.close(fd)  # closing the descriptor releases the flock
        return
    yield False


def read_holder(raw: bytes) -> Holder | None:
    """The holder a lock file names; None if it names none (or is not JSON)."""
    try:
        document = load_json(raw)
        return Holder(
            pid=int(document.get("pid") or 0),
            host=str(document.get("host", "")),
            run_id=str(document.get("run_id", "")),
            since=datetime.fromisoformat(document["since"]) if "since" in document else utcnow(),
            token=int(document.get("token", 0)),
        )
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
