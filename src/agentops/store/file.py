"""The file store: agents' state as files in ``state/``, locked with ``flock``. The default.

Per agent ``<name>``::

    <name>.json            the state (indented JSON, for people too); .bak: the previous one,
                           .pre-restore: the one ``agentops state restore`` last replaced
    <name>.ledger.json     the ledger of guarded actions; .bak: the previous one
    <name>.journal         the running (or a crashed) invocation's records, one JSON line each
    <name>.lock            flock'ed by the run holding the lease; names its pid and run
    <name>.attempt.json    the last attempt to run the agent
    <name>.paused.json     present while the agent is paused
    <name>.notices.json    what people were told about it (notifications)
    <name>.tick            the last schedule tick a run claimed
    <name>.deadline        the running (or an ended) run's deadline marker, written by the
                           run itself (:mod:`agentops.run.deadline`): it is the store's too

and ``.group.<group>.<slot>.lock``: one of a group's slots, ``flock``'ed by the run holding it.

Every write goes through the :class:`~agentops._infra.fs.FileSystem` seam: atomic
replaces (temporary file, fsync, rename, directory fsync), no link followed,
files owner-only. A commit writes the ledger, then the state, then drops the
journal: after a crash at any point each file holds its previous or its new
version, and the journal, still there, is folded again harmlessly (each file
remembers the last journal folded into it).

The locks (the lease, a group's slots) are :mod:`agentops.store._filelock`;
the journal is :mod:`agentops.store._filejournal`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from agentops._infra.files import (
    SIDE_FILE_LIMIT,
    STATE_FILE_LIMIT,
    Unreadable,
    check_regular,
)
from agentops._infra.fs import FileSystem, MovedAside, describe
from agentops._infra.timestamps import iso
from agentops.errors import Overlap, StateError
from agentops.model.journal import parse_lines
from agentops.model.ledger import Ledger
from agentops.model.state import AgentState
from agentops.project.config import describe_validation_error
from agentops.store._filejournal import FileJournal
from agentops.store._filelock import (
    FileLease,
    group_slot,
    lock_holder,
    read_holder,
    write_lock,
)
from agentops.store.base import (
    Attempt,
    Holder,
    Notices,
    Pause,
    Remains,
    Snapshot,
    StoreDescription,
    each_lease,
)
from agentops.store.codec import (
    LedgerDocument,
    dump,
    read_ledger,
    read_model,
    read_state,
    read_versioned_state,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
    from pathlib import Path

    from agentops.store.base import Lease, Marker

__all__ = ["FileJournal", "FileLease", "FileStore"]

_M = TypeVar("_M", bound=BaseModel)

_REBUILT = frozenset({"attempt", "notices", "tick"})
"""Records agentops can do without: one that cannot be read is moved aside when replaced."""

_STATE_FILE = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}\.json")
"""``<name>.json``: an agent's state (an agent's name holds no dot, so no other file matches)."""


class FileStore:
    """State, ledgers, journals and locks as files in one directory."""

    def __init__(self, directory: Path, *, fs: FileSystem | None = None) -> None:
        """Keep files in ``directory``, created (owner-only) on the first write."""
        self.directory = directory
        self.fs = fs or FileSystem()
        self._migrated_ledgers: dict[str, Ledger] = {}
        """Ledgers taken out of version-1 state files, until a commit writes them."""
        self.moved_aside: list[MovedAside] = []
        """Files moved aside since its caller last looked (and emptied the list)."""
        self._unreadable: set[Path] = set()
        """Files found unreadable: a record agentops rebuilds is moved aside before it is."""

    # -- paths -------------------------------------------------------------------------

    def path(self, name: str, suffix: str = ".json") -> Path:
        """``state/<name><suffix>``."""
        return self.directory / f"{name}{suffix}"

    def prepare(self, *, create: bool) -> StoreDescription:  # noqa: ARG002 - no tables to make
        """Describe the store: files need no tables (the directory is made by the first write)."""
        return self.describe()

    def note_rows(self, name: str) -> None:  # noqa: ARG002 - the same for every agent
        """None: notes are SQLite files beside the state (:mod:`agentops.memory.notes`)."""
        return

    def reply_cache(self, name: str, *, ttl_s: float, max_entries: int) -> None:  # noqa: ARG002
        """None: the cache is a file of the host (:mod:`agentops.llm.cache`)."""
        return

    def describe(self) -> StoreDescription:
        """The directory, and how many agents have a state file in it (no tables: no version)."""
        try:
            with os.scandir(self.directory) as entries:
                agents = sum(
                    _STATE_FILE.fullmatch(entry.name) is not None and entry.is_file()
                    for entry in entries
                )
        except FileNotFoundError:
            agents = 0  # made by the first write
        except OSError as exc:
            raise StateError(f"{self.directory}: cannot read: {describe(exc)}") from exc
        return StoreDescription(
            backend="files",
            where=str(self.directory),
            schema_version=None,
            created=False,
            agents=agents,
        )

    # -- lease -------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, name: str, *, run_id: str, ttl_s: float = 0.0) -> Iterator[FileLease]:  # noqa: ARG002 - a local lock dies with its process
        """Hold an exclusive, non-blocking ``flock`` on ``<name>.lock``.

        The file names the holder (pid, host, run id, since, token) for people
        and for ``agentops status``; when the run ends, only the token stays.
        """
        lock_path = self.path(name, ".lock")
        try:
            self.fs.mkdir(self.directory)
            # No run ever locks anything but a regular file: another kind is moved aside.
            self._aside_if_not_regular(lock_path)
            fd = self.fs.open(lock_path, os.O_RDWR | os.O_CREAT)
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in since
                os.close(fd)
                raise Unreadable(lock_path, "it is not a regular file")
        except OSError as exc:
            raise StateError(f"{lock_path}: cannot open lock: {describe(exc)}", agent=name) from exc
        lease: FileLease | None = None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.holder(name)
                if holder is not None and holder.stray:
                    who = f"pid {holder.pid}" if holder.pid else "a process"
                    raise Overlap(
                        f"{name}: {who} holds {lock_path} and is not a run of it: "
                        "every run is skipped until it ends",
                        agent=name,
                    ) from None
                pid = holder.pid if holder else "?"
                raise Overlap(
                    f"{name} is already running (pid {pid} holds {lock_path})", agent=name
                ) from None
            previous = read_holder(os.pread(fd, 4096, 0))
            token = (previous.token if previous else 0) + 1
            try:
                write_lock(self.fs, fd, pid=os.getpid(), run_id=run_id, token=token)
            except OSError as exc:
                raise StateError(
                    f"{lock_path}: cannot write the lock: {describe(exc)}", agent=name
                ) from exc
            lease = FileLease(name, fd, token=token)
            yield lease
        finally:
            if lease is None:
                os.close(fd)
            elif not lease.kept and not lease.forked:
                with contextlib.suppress(OSError):
                    write_lock(self.fs, fd, token=lease.token)
                lease.release()  # closing the descriptor releases the flock

    def leases(
        self, names: Iterable[str], *, run_id: str, ttl_s: float = 0.0
    ) -> contextlib.AbstractContextManager[Mapping[str, Lease]]:
        """Hold the lock of every agent of ``names``, or raise :class:`Overlap` holding none."""
        return each_lease(self, names, run_id=run_id, ttl_s=ttl_s)

    def holder(self, name: str) -> Holder | None:
        """The pid and run holding ``name``'s lock, if a live process holds it.

        A lock held while the file names no live run (a process a run left
        behind keeps it through an inherited descriptor, or another tool
        took it) is a ``stray`` holder: every run is skipped until it ends.
        """
        return lock_holder(self.fs, self.path(name, ".lock"))

    # -- state and ledger --------------------------------------------------------------

    def load(self, name: str) -> AgentState:
        """Read and validate ``<name>.json``; a missing file is a fresh state.

        A version-1 file is migrated in memory; its ledger is handed to
        :meth:`load_ledger`, and written to its own file by the next commit.
        """
        path = self.path(name)
        raw = self._read(path, name, "state")
        if raw is None:
            return AgentState(agent=name)
        state, entries = read_versioned_state(raw, name, lambda why: self._refused(path, name, why))
        if entries is not None and not os.path.lexists(self.path(name, ".ledger.json")):
            try:
                document = LedgerDocument(agent=name, entries=entries)
            except ValidationError as exc:
                raise self._refused(path, name, describe_validation_error(exc)) from exc
            migrated = Ledger(document.entries)
            migrated.changed = True  # the next commit writes it to its own file
            self._migrated_ledgers[name] = migrated
        return state

    def load_ledger(self, name: str) -> Ledger:
        """Read ``<name>.ledger.json``; the ledger of a migrated version-1 state if none."""
        path = self.path(name, ".ledger.json")
        raw = self._read(path, name, "ledger")
        if raw is None:
            migrated = self._migrated_ledgers.get(name)
            return Ledger() if migrated is None else migrated
        return read_ledger(raw, name, lambda why: self._refused(path, name, why, what="ledger"))

    def commit(
        self,
        lease: Lease,
        state: AgentState,
        *,
        ledger: Ledger | None = None,
        drop_journal: bool = False,
        keep_backup: bool = False,
        drop_markers: Sequence[str] = (),  # noqa: ARG002 - its markers are the runs' own files
    ) -> None:
        """Write the ledger (if changed), then the state, then drop the journal."""
        lease.check()
        name = state.agent
        migrated = self._migrated_ledgers.pop(name, None)
        ledger = ledger if ledger is not None else migrated
        if ledger is not None and ledger.changed:
            document = LedgerDocument.of(name, ledger)
            self._replace(self.path(name, ".ledger.json"), name, dump(document), what="ledger")
            ledger.changed = False
        try:
            data = dump(state)
        except pydantic_core.PydanticSerializationError as exc:
            raise StateError(f"{self.path(name)}: state is not JSON: {exc}", agent=name) from exc
        self._replace(self.path(name), name, data, what="state", backup=not keep_backup)
        if drop_journal:
            try:
                self.fs.unlink(self.path(name, ".journal"))
            except OSError as exc:  # it would be folded again, harmlessly; say so all the same
                raise StateError(
                    f"{self.path(name, '.journal')}: cannot remove: {describe(exc)}", agent=name
                ) from exc

    def backup(self, name: str) -> AgentState | None:
        """``<name>.json.bak``, the state before the last commit."""
        path = self.path(name, ".json.bak")
        raw = self._read(path, name, "state")
        if raw is None:
            return None
        return read_state(raw, name, lambda why: self._refused(path, name, why))

    def restore(self, lease: Lease, name: str) -> None:
        """``<name>.json.bak`` becomes the state, and the state it replaces the ``.bak``.

        So a second restore undoes the first. The replaced state is not read
        (restoring is how an unreadable one is mended), and it is also kept as
        ``.pre-restore``, which later saves leave alone.
        """
        lease.check()
        path = self.path(name, ".json.bak")
        raw = self._read(path, name, "state")
        if raw is None:
            raise StateError(f"{path}: there is no backup to restore", agent=name)
        read_state(raw, name, lambda why: self._refused(path, name, why))
        # A version-1 state holds the newest ledger: it gets its own file before
        # the state is swapped for an older one (whose ledger would be older too).
        with contextlib.suppress(StateError):  # an unreadable state is what restore mends
            self.load(name)
        migrated = self._migrated_ledgers.pop(name, None)
        if migrated is not None:
            ledger_file = dump(LedgerDocument.of(name, migrated))
            self._replace(self.path(name, ".ledger.json"), name, ledger_file, what="ledger")
        current = self.path(name)
        try:
            if os.path.lexists(current):
                keep = self.path(name, ".json.pre-restore")
                self.fs.unlink(keep)
                self.fs.link(current, keep)
            self.fs.replace(current, raw, backup=True)
        except OSError as exc:
            raise StateError(f"{current}: cannot restore: {describe(exc)}", agent=name) from exc

    # -- the journal -------------------------------------------------------------------

    def journal(self, lease: Lease, run_id: str) -> FileJournal:
        """``<name>.journal`` for the invocation ``run_id``."""
        lease.check()
        return FileJournal(self.fs, self.path(lease.agent, ".journal"), run_id)

    def remains(self, name: str) -> Remains:
        """The records of ``<name>.journal``; no markers (a run's own file is its marker)."""
        return Remains(self.pending(name))

    def publish_marker(self, name: str, marker: Marker) -> bool:  # noqa: ARG002 - kept as it is
        """False: the file ``state/<name>.deadline`` the run left is where the next run reads it."""
        return False

    def pending(self, name: str) -> list[BaseModel] | None:
        """The records of ``<name>.journal``, if a run that died left one."""
        path = self.path(name, ".journal")
        raw = self._read(path, name, "journal")
        if raw is None:
            return None
        try:
            return parse_lines(raw, agent=name)
        except ValueError as exc:
            raise StateError(
                f"{path}: unreadable journal ({exc}); the file was left as it is", agent=name
            ) from exc

    # -- records kept without the lease ------------------------------------------------

    def claim_tick(self, lease: Lease, tick: datetime, *, claimed: bool = False) -> bool:  # noqa: ARG002 - never asked: its claim_ticks claims nothing
        """Claim ``tick`` in ``<name>.tick`` (under the lease, so no two runs race for it)."""
        lease.check()
        try:
            last = self.last_tick(lease.agent)
        except StateError:
            if self.path(lease.agent, ".tick") not in self._unreadable:
                raise
            last = None  # not a file, or too large: it claims nothing, and is moved aside
        if last is not None and last >= tick:
            return False
        self._replace(
            self.path(lease.agent, ".tick"),
            lease.agent,
            f"{iso(tick)}\n".encode(),
            durable=False,
            what="tick",
        )
        return True

    def claim_ticks(
        self,
        ticks: Mapping[str, datetime],  # noqa: ARG002 - claimed per run
        *,
        scheduled: Collection[str] = (),  # noqa: ARG002 - nothing claimed, nothing to take over
    ) -> None:
        """None: each run claims its own tick under its lock (one host, no round trips to save)."""
        return

    def settle_ticks(self, claimer: int, names: Collection[str]) -> None:
        """Never called: :meth:`claim_ticks` claims nothing."""

    def group_slot(self, group: str, limit: int) -> contextlib.AbstractContextManager[bool]:
        """Try each slot of the group: an ``flock`` on ``.group.<group>.<slot>.lock``."""
        return group_slot(self.fs, self.directory, group, limit)

    def last_tick(self, name: str) -> datetime | None:
        """The tick in ``<name>.tick``."""
        path = self.path(name, ".tick")
        raw = self._read(path, name, "tick", limit=SIDE_FILE_LIMIT)
        try:
            return datetime.fromisoformat(raw.decode().strip()) if raw else None
        except (ValueError, UnicodeDecodeError):
            self._unreadable.add(path)
            return None  # a damaged claim claims nothing

    def record_attempt(self, name: str, attempt: Attempt) -> None:
        """``<name>.attempt.json``, replaced without fsync: losing it in a power cut is harmless."""
        self._replace(
            self.path(name, ".attempt.json"), name, dump(attempt), durable=False, what="attempt"
        )

    def last_attempt(self, name: str) -> Attempt | None:
        """The attempt in ``<name>.attempt.json``."""
        return self._read_model(Attempt, self.path(name, ".attempt.json"), name)

    def set_pause(self, name: str, pause: Pause | None) -> None:
        """Write (or remove) ``<name>.paused.json``."""
        path = self.path(name, ".paused.json")
        if pause is None:
            try:
                self.fs.unlink(path)
            except OSError as exc:
                raise StateError(f"{path}: cannot remove: {describe(exc)}", agent=name) from exc
        else:
            self._replace(path, name, dump(pause), what="pause")

    def pause(self, name: str) -> Pause | None:
        """The pause in ``<name>.paused.json``."""
        return self._read_model(Pause, self.path(name, ".paused.json"), name)

    def notices(self, name: str) -> Notices | None:
        """What ``<name>.notices.json`` says people were told."""
        return self._read_model(Notices, self.path(name, ".notices.json"), name)

    def set_notices(self, name: str, notices: Notices) -> None:
        """``<name>.notices.json``, replaced without fsync (losing it costs one more message)."""
        self._replace(
            self.path(name, ".notices.json"), name, dump(notices), durable=False, what="notices"
        )

    # -- copies ------------------------------------------------------------------------

    def snapshot(self, name: str) -> Snapshot:
        """Everything the files in ``state/`` keep of ``name``."""
        present = os.path.lexists(self.path(name))
        return Snapshot(
            agent=name,
            state=self.load(name) if present else None,
            backup=self.backup(name) if present else None,
            ledger=self._ledger_if_any(name) if present else None,
            attempt=self.last_attempt(name),
            pause=self.pause(name),
            notices=self.notices(name),
            tick=self.last_tick(name),
        )

    def _ledger_if_any(self, name: str) -> Ledger | None:
        # After load(): a version-1 state's ledger counts, though it has no file yet.
        has_file = os.path.lexists(self.path(name, ".ledger.json"))
        return self.load_ledger(name) if has_file or name in self._migrated_ledgers else None

    def put_snapshot(self, lease: Lease, snapshot: Snapshot) -> None:
        """Write every file of the snapshot's agent (and remove those it does not have)."""
        lease.check()
        name = snapshot.agent
        documents: list[tuple[str, bytes | None]] = [
            (".json.bak", None if snapshot.backup is None else dump(snapshot.backup)),
            (
                ".ledger.json",
                None if snapshot.ledger is None else dump(LedgerDocument.of(name, snapshot.ledger)),
            ),
            (".attempt.json", None if snapshot.attempt is None else dump(snapshot.attempt)),
            (".paused.json", None if snapshot.pause is None else dump(snapshot.pause)),
            (".notices.json", None if snapshot.notices is None else dump(snapshot.notices)),
            (".tick", None if snapshot.tick is None else f"{iso(snapshot.tick)}\n".encode()),
            (".json", None if snapshot.state is None else dump(snapshot.state)),
        ]
        for suffix, data in documents:
            path = self.path(name, suffix)
            try:
                if data is None:
                    self.fs.unlink(path)
                else:
                    self.fs.replace(path, data)
            except OSError as exc:
                raise StateError(f"{path}: cannot write: {describe(exc)}", agent=name) from exc

    # -- machinery ---------------------------------------------------------------------

    def _read(
        self, path: Path, name: str, what: str, *, limit: int = STATE_FILE_LIMIT
    ) -> bytes | None:
        try:
            return self.fs.read(path, limit=limit)
        except OSError as exc:
            if isinstance(exc, Unreadable) and exc.errno != errno.ELOOP:  # a link stays refused
                self._unreadable.add(path)
            raise StateError(f"{path}: cannot read {what}: {describe(exc)}", agent=name) from exc

    def _read_model(self, model: type[_M], path: Path, name: str) -> _M | None:
        raw = self._read(path, name, "file", limit=SIDE_FILE_LIMIT)
        if raw is None:
            return None

        def unreadable(why: str) -> StateError:
            self._unreadable.add(path)
            return self._refused(path, name, why, what="file")

        return read_model(raw, model, unreadable)

    def _aside_if_not_regular(self, path: Path) -> None:
        # A link stays refused (it may be an attack); any other kind is moved aside.
        try:
            check_regular(path)
        except Unreadable as exc:
            if exc.errno == errno.ELOOP:
                raise
            self._set_aside(path, describe(exc))

    def _set_aside(self, path: Path, why: str) -> None:
        self.moved_aside.append(self.fs.set_aside(path, why=why))
        self._unreadable.discard(path)

    def _replace(
        self,
        path: Path,
        name: str,
        data: bytes,
        *,
        what: str,
        durable: bool = True,
        backup: bool = True,
    ) -> None:
        try:
            if what in _REBUILT:  # replaced, but what could not be read is kept aside
                if path in self._unreadable:
                    self._set_aside(path, "it could not be read")
                self._aside_if_not_regular(path)
            backup = backup and what in ("state", "ledger")
            self.fs.replace(path, data, backup=backup, durable=durable)
        except OSError as exc:
            raise StateError(f"{path}: cannot save {what}: {describe(exc)}", agent=name) from exc

    @staticmethod
    def _refused(path: Path, name: str, why: str, *, what: str = "state") -> StateError:
        return StateError(
            f"{path}: unreadable {what} ({why}); the file was left as it is: "
            "fix it, or move it aside to start fresh",
            agent=name,
        )
