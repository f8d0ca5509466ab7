"""The file store's locks: an agent's lease and a group's slots, each an ``flock`` on a file.

The kernel releases an ``flock`` when its process dies, so a run killed
with ``kill -9`` leaves nothing to clean up. ``<name>.lock`` also names its
holder (pid, host, run id, since) and the fencing token, which grows with
each holder and stays when the run ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentops._infra.clock import utcnow
from agentops._infra.fs import FileSystem, describe
from agentops._infra.timestamps import iso
from agentops.errors import LeaseLost, Overlap, StateError
from agentops.store.base import Holder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class FileLease:
    """An exclusive ``flock`` on ``<name>.lock``: released by the kernel when the process dies."""

    def __init__(self, agent: str, fd: int, token: int) -> None:
        """Held through the open descriptor ``fd``."""
        self.agent = agent
        self.token = token
        self.fd: int | None = fd
        self.kept = False

    def keep_until_exit(self) -> None:
        """Hold the lock until this process exits."""
        self.kept = True

    def check(self) -> None:
        """A local lock cannot lapse while its process lives; only a released one is lost."""
        if self.fd is None:
            raise LeaseLost(f"{self.agent}: the run's lock was released", agent=self.agent)


@contextlib.contextmanager
def hold_lock(fs: FileSystem, directory: Path, name: str, *, run_id: str) -> Iterator[FileLease]:
    """Hold an exclusive, non-blocking ``flock`` on ``<directory>/<name>.lock``.

    The file names the holder (pid, host, run id, since, token) for people
    and for ``agentops status``; when the run ends, only the token stays.
    """
    lock_path = directory / f"{name}.lock"
    try:
        fs.mkdir(directory)
        fd = fs.open(lock_path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise StateError(f"{lock_path}: cannot open lock: {describe(exc)}", agent=name) from exc
    lease: FileLease | None = None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(os.pread(fd, 4096, 0))
            pid = holder.pid if holder else "?"
            raise Overlap(
                f"{name} is already running (pid {pid} holds {lock_path})", agent=name
            ) from None
        previous = _read_holder(os.pread(fd, 4096, 0))
        token = (previous.token if previous else 0) + 1
        try:
            _write_lock(fs, fd, pid=os.getpid(), run_id=run_id, token=token)
        except OSError as exc:
            raise StateError(
                f"{lock_path}: cannot write the lock: {describe(exc)}", agent=name
            ) from exc
        lease = FileLease(name, fd, token=token)
        yield lease
    finally:
        if lease is None or not lease.kept:
            if lease is not None:
                with contextlib.suppress(OSError):
                    _write_lock(fs, fd, token=lease.token)
                lease.fd = None
            os.close(fd)  # closing the descriptor releases the flock


def _write_lock(
    fs: FileSystem, fd: int, *, token: int, pid: int | None = None, run_id: str = ""
) -> None:
    document: dict[str, Any] = {"token": token}
    if pid is not None:
        document |= {
            "pid": pid,
            "host": socket.gethostname(),
            "run_id": run_id,
            "since": iso(utcnow()),
        }
    fs.rewrite(fd, json.dumps(document).encode() + b"\n")


def lock_holder(fs: FileSystem, lock_path: Path) -> Holder | None:
    """The pid and run holding the lock at ``lock_path``, if a live process holds it."""
    try:
        raw = fs.read(lock_path)
    except OSError:
        return None
    holder = _read_holder(raw or b"")
    if holder is None or not holder.pid or not _alive(holder.pid):
        return None
    return holder


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


def _read_holder(raw: bytes) -> Holder | None:
    try:
        document = json.loads(raw)
        return Holder(
            pid=int(document.get("pid") or 0),
            host=str(document.get("host", "")),
            run_id=str(document.get("run_id", "")),
            since=datetime.fromisoformat(document["since"]) if "since" in document else utcnow(),
            token=int(document.get("token", 0)),
        )
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
