"""The agent's state file: a versioned pydantic model, saved crash-safely, locked per agent.

``state/<name>.json`` is written only by agentops and read by people, so it is
indented, its timestamps are UTC ISO 8601 and its lists are bounded. Saving
writes a temporary file, fsyncs it, keeps the previous version as
``<name>.json.bak``, renames the new file into place and fsyncs the directory:
a crash at any moment leaves either the old or the new version. A file that
does not parse or validate is never overwritten.

:class:`StateStore` is the seam for other backends (a shared database); the
:class:`FileStateStore` is the embedded default.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from agentops._fsio import fsync_directory
from agentops.budget import LONGEST_WINDOW_S
from agentops.config import describe_validation_error
from agentops.errors import Overlap, StateError
from agentops.journal import Journal, Recovered, recover
from agentops.ledger import LedgerMap  # noqa: TC001 - pydantic reads it at run time

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "MAX_ERRORS",
    "SCHEMA_VERSION",
    "AgentState",
    "Budget",
    "Circuit",
    "ErrorRecord",
    "FileStateStore",
    "Held",
    "HeldLock",
    "LastRun",
    "Metrics",
    "Spend",
    "StateStore",
    "UtcDatetime",
]

SCHEMA_VERSION = 1
"""Bumped when the file's shape changes; older files are migrated forward on load."""

MAX_ERRORS = 20
"""How many recent errors the state file keeps."""


def _as_utc(value: datetime) -> datetime:
    # A hand-edited timestamp without a zone is read as UTC, like every one we write.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime stored as UTC ISO 8601 text (``2026-11-22T03:10:00Z``)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LastRun(_Record):
    """The most recent run that was executed."""

    run_id: str
    started_at: UtcDatetime
    finished_at: UtcDatetime
    status: str
    duration_s: float
    error: str | None = None
    degraded: bool = False


class Metrics(_Record):
    """Counters since the state file was created.

    ``runs`` counts executed runs; ``skipped`` the runs that did not start
    (rate limit, circuit, budget); ``stopped`` those a guard ended early.
    """

    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    stopped: int = 0
    held: int = 0
    escalated: int = 0
    degraded: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class Circuit(_Record):
    """The circuit breaker: closed, open (runs skipped until ``until``), or half-open."""

    state: Literal["closed", "open", "half_open"] = "closed"
    fingerprint: str | None = None
    failures: int = 0
    reason: str | None = None
    opened_at: UtcDatetime | None = None
    until: UtcDatetime | None = None


class Spend(_Record):
    """Money or tokens a run spent, recorded before it was spent."""

    at: UtcDatetime
    run_id: str
    usd: float = 0.0
    tokens: int = 0


class Budget(_Record):
    """The last day of spends (enough for every cost window), and a refused spend.

    ``waiting_usd`` is the spend a cost window last refused: runs are skipped
    until the windows have room for it, instead of each running into the cap.
    """

    spends: list[Spend] = []
    waiting_usd: float = 0.0

    def record(self, *, at: datetime, run_id: str, usd: float, tokens: int) -> None:
        """Add a spend, forgetting those no window can see any more."""
        start = at - timedelta(seconds=LONGEST_WINDOW_S)
        kept = [s for s in self.spends if s.at > start]
        self.spends = [*kept, Spend(at=at, run_id=run_id, usd=usd, tokens=tokens)]


class Held(_Record):
    """A result waiting for a human: held for review, or escalated."""

    id: str
    run_id: str
    at: UtcDatetime
    confidence: float | None = None
    escalated: bool = False
    result: dict[str, Any]


class ErrorRecord(_Record):
    """One recent failure or rejection."""

    at: UtcDatetime
    run_id: str
    category: str
    message: str


class AgentState(_Record):
    """Everything agentops remembers about one agent between runs.

    Assignments are validated, so a wrong value fails where it is set instead
    of producing a file the next run cannot read.
    """

    # Ledger keys and timestamps are unique strings: caching them costs more
    # than it saves when a state holds 100,000 entries (bench/ledger.py).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, cache_strings="none")

    schema_version: int = SCHEMA_VERSION
    agent: str
    last_run: LastRun | None = None
    last_success_at: UtcDatetime | None = None
    metrics: Metrics = Field(default_factory=Metrics)
    errors: list[ErrorRecord] = []
    circuit: Circuit = Field(default_factory=Circuit)
    rate_limits: dict[str, list[UtcDatetime]] = {}
    budget: Budget = Field(default_factory=Budget)
    review: list[Held] = []
    ledger: LedgerMap = {}
    journal_folded: str | None = None
    data: dict[str, Any] = {}

    def record_error(self, error: ErrorRecord) -> None:
        """Remember ``error``, keeping only the :data:`MAX_ERRORS` most recent."""
        self.errors = [*self.errors, error][-MAX_ERRORS:]


class HeldLock:
    """A run lock being held."""

    def __init__(self) -> None:
        """Held until the ``with`` block ends."""
        self.kept = False

    def keep_until_exit(self) -> None:
        """Hold the lock until this process exits (work of the run is still going on)."""
        self.kept = True


class StateStore(Protocol):
    """Where agents' state lives: the seam for backends other than files."""

    def lock(self, name: str) -> contextlib.AbstractContextManager[HeldLock]:
        """Hold the agent's exclusive run lock, or raise :class:`Overlap`."""

    def load(self, name: str) -> AgentState:
        """The agent's state, fresh if it has none; :class:`StateError` if unreadable."""

    def save(self, state: AgentState) -> None:
        """Persist ``state`` atomically; :class:`StateError` if it cannot be written."""

    def journal(self, name: str, run_id: str) -> Journal:
        """The journal a run of ``name`` appends its records to."""

    def recover(self, state: AgentState, *, persist: bool = True) -> Recovered | None:
        """Fold a journal left by a run that died into ``state``, and persist that."""


class FileStateStore:
    """State as JSON files in ``state/``, locked with ``flock``.

    The store writes what it is given: the runner redacts what agents hand
    over before it enters the state.
    """

    def __init__(self, directory: Path) -> None:
        """Keep state files in ``directory``, created on the first save or lock."""
        self.directory = directory

    def path(self, name: str) -> Path:
        """``state/<name>.json``."""
        return self.directory / f"{name}.json"

    def journal_path(self, name: str) -> Path:
        """``state/<name>.journal``."""
        return self.directory / f"{name}.journal"

    def journal(self, name: str, run_id: str) -> Journal:
        """``state/<name>.journal``, for the run ``run_id``."""
        return Journal(self.journal_path(name), run_id=run_id)

    def recover(self, state: AgentState, *, persist: bool = True) -> Recovered | None:
        """Fold ``state/<name>.journal``, if a run died and left it, into ``state``.

        The recovered state is saved before the journal is removed, so a crash
        here too loses nothing; call with the agent's lock held. Without
        ``persist`` (a dry run, a look at the ledger) the state is folded in
        memory only and the files are left as they are.
        """
        path = self.journal_path(state.agent)
        try:
            recovered = recover(state, path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{path}: unreadable journal ({exc}); the file was left as it is", agent=state.agent
            ) from exc
        if recovered is not None and persist:
            if recovered.records:
                self.save(state)
            path.unlink(missing_ok=True)
        return recovered

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[HeldLock]:
        """Hold an exclusive, non-blocking ``flock`` on ``state/<name>.lock``.

        The kernel releases it when the process dies, so a lock is never stale.
        The holder's pid is written into the file for people to read.
        """
        lock_path = self.directory / f"{name}.lock"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"{lock_path}: cannot open lock: {exc.strerror}", agent=name) from exc
        held = HeldLock()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise Overlap(
                    f"{name} is already running (pid {holder} holds {lock_path})", agent=name
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield held
        finally:
            if not held.kept:
                os.close(fd)  # closing the descriptor releases the flock

    def load(self, name: str) -> AgentState:
        """Read and validate ``state/<name>.json``; a missing file is a fresh state."""
        path = self.path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return AgentState(agent=name)
        except OSError as exc:
            raise StateError(f"{path}: cannot read state: {exc.strerror}", agent=name) from exc
        try:
            state = AgentState.model_validate_json(raw)
        except ValidationError as exc:
            raise StateError(
                f"{path}: unreadable state ({_why_unreadable(raw, exc)}); "
                "the file was left as it is: fix it, or move it aside to start fresh",
                agent=name,
            ) from exc
        if state.schema_version > SCHEMA_VERSION:
            raise StateError(
                f"{path}: schema_version {state.schema_version} was written by a newer "
                "agentops; upgrade agentops. The file was left as it is",
                agent=name,
            )
        # Older versions are migrated forward here once a second version exists.
        state.schema_version = SCHEMA_VERSION
        if state.agent != name:
            raise StateError(
                f"{path}: holds the state of agent {state.agent!r}, not {name!r}; "
                "the file was left as it is",
                agent=name,
            )
        return state

    def save(self, state: AgentState) -> None:
        """Write-temp, fsync, keep the old file as ``.bak``, rename, fsync the directory."""
        path = self.path(state.agent)
        try:
            data = state.model_dump_json(indent=2).encode() + b"\n"
        except PydanticSerializationError as exc:
            raise StateError(f"{path}: state is not JSON: {exc}", agent=state.agent) from exc
        tmp = path.with_name(path.name + ".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists():
                # A hard link keeps the previous version without copying it, and
                # without a moment when <name>.json is missing.
                bak_tmp = path.with_name(path.name + ".bak.tmp")
                bak_tmp.unlink(missing_ok=True)
                os.link(path, bak_tmp)
                bak_tmp.replace(path.with_name(path.name + ".bak"))
            tmp.replace(path)
            fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StateError(
                f"{path}: cannot save state: {exc.strerror or exc}", agent=state.agent
            ) from exc


def _why_unreadable(raw: bytes, exc: ValidationError) -> str:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as json_exc:
        return f"not JSON: {json_exc}"
    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return f"schema_version {version} was written by a newer agentops; upgrade agentops"
    return describe_validation_error(exc)
