"""``ctx.memory``: working memory that expires, and long-term notes ranked by relevance.

Both follow the run's transaction exactly as ``ctx.state`` does: each
attempt (a retry, the fallback) starts from what the run loaded, and only a
run whose changes to ``ctx.state`` are kept keeps them. A failed run, a
rejected output and a dry run keep nothing.

- **Working memory**, ``remember(key, value, ttl="2h")``, ``recall(key)``,
  ``forget(key)``: JSON values kept in the state file (``memory``), each until
  its time to live has passed by the run's clock. Expired entries are
  dropped when the state is saved. It never touches SQLite.
- **Notes**, ``note(text, tags=[...], importance=5)`` and
  ``relevant(query, k=5)``: kept in ``state/<name>.memory.sqlite``
  (:mod:`agentops.memory.notes`). The notes a run makes are held until the run
  succeeds, then written after its state is committed, redacted, and the
  file bounded to ``[memory] keep_notes``. ``relevant()`` also sees the
  notes the current attempt has made (in a copy of the file, in memory),
  ranked together with the stored ones exactly as they will be. A store
  shared by hosts (PostgreSQL) keeps the notes itself instead
  (:mod:`agentops.memory.shared`), so every host recalls them.

SQLite is opened, and imported, only when ``relevant()`` is first called or
notes are written.

The agent holds a :class:`Memory`, which offers only those five methods;
the run holds the :class:`RunMemory` behind it, and with it the run's side
of the transaction (``rewind``, ``kept``, ``pending``, ``save_notes``,
``close``), out of the agent's reach: an agent cannot keep what its run does
not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pydantic_core

from agentops.errors import AgentOpsError
from agentops.memory.notes import Note, NoteFile
from agentops.memory.shared import SharedNotes
from agentops.model.state import Remembered, check_readable
from agentops.project.units import parse_positive_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from agentops._infra.clock import Clock
    from agentops._infra.fs import FileSystem
    from agentops._infra.redact import Redactor
    from agentops.model.noterows import NoteRows
    from agentops.project.config import MemoryConfig

__all__ = ["MAX_NOTE_CHARS", "MAX_TAGS", "Memory", "Note", "RunMemory"]

MAX_NOTE_CHARS = 100_000
"""The longest note text: notes are observations, not documents."""

MAX_TAGS = 50
"""The most tags one note may have."""

_VALUE_DEPTH = 3
"""How deep in the state file a remembered value sits: ``{"memory": {key: {"value": ...``."""


class Memory:
    """``ctx.memory``: working memory with a time to live, and long-term notes.

    What an agent may do with its memory, and nothing else: what is kept,
    and when, is its run's business.
    """

    __slots__ = ("_run",)

    def __init__(self, run: RunMemory) -> None:
        """The agent's hand on ``run``, its run's memory."""
        self._run = run

    def remember(self, key: str, value: Any, *, ttl: str | float | None = None) -> None:
        """Keep ``value`` (JSON, every number finite) under ``key`` until ``ttl`` has passed.

        ``ttl`` is a duration as agent.toml writes them (``"90s"``, ``"2h"``,
        ``"7d"``) or seconds; None keeps it until it is forgotten. The value is
        copied: changing the object afterwards changes nothing remembered.
        """
        self._run.remember(key, value, ttl=ttl)

    def recall(self, key: str, default: Any = None) -> Any:
        """The value remembered under ``key``, or ``default`` if none is (or it expired)."""
        return self._run.recall(key, default)

    def forget(self, key: str) -> None:
        """Forget ``key`` (nothing happens if it is not remembered)."""
        self._run.forget(key)

    def note(self, text: str, *, tags: Sequence[str] = (), importance: int = 5) -> None:
        """Note ``text`` for later runs, with ``tags`` and an ``importance`` from 1 to 10.

        Held until the run succeeds, then written (secrets redacted). Tags
        are searched as the text is.
        """
        self._run.note(text, tags=tags, importance=importance)

    def relevant(self, query: str, k: int = 5) -> list[Note]:
        """The ``k`` notes most relevant to ``query``, best first (docs/memory.md: the ranking).

        Only notes holding a word of ``query`` are candidates; the notes this
        attempt made count as if already written.
        """
        return self._run.relevant(query, k)


class RunMemory:
    """One run's memory: the working memory it loaded, and the notes it makes.

    Made by the run when its agent first touches ``ctx.memory`` (which is
    :attr:`agent_view`). ``stop`` ends the run when the notes file cannot be
    read (a file error, not the agent's: its ``except Exception`` must not
    hide it).
    """

    def __init__(
        self,
        *,
        agent: str,
        run_id: str,
        working: Mapping[str, Remembered],
        config: MemoryConfig,
        path: Path,
        clock: Clock,
        redactor: Redactor,
        fs: FileSystem,
        dry_run: bool = False,
        stop: Callable[[AgentOpsError], Any] | None = None,
        shared: NoteRows | None = None,
    ) -> None:
        """Start from ``working``, the working memory the state held.

        ``shared``: the notes the store keeps, if it does (else the file at ``path``).
        """
        self.agent = agent
        self.run_id = run_id
        self.config = config
        self.path = path
        self.dry_run = dry_run
        self._loaded = dict(working)
        self._working = dict(working)
        self._notes: list[Note] = []
        self._clock = clock
        self._redactor = redactor
        self._fs = fs
        self._stop = stop
        self._shared = shared
        self._file: NoteFile | SharedNotes | None = None
        self._opened = False
        self._scratch: NoteFile | None = None
        self._in_scratch = 0
        self.agent_view = Memory(self)
        """What the agent is handed as ``ctx.memory``."""

    # -- working memory ----------------------------------------------------------------

    def remember(self, key: str, value: Any, *, ttl: str | float | None = None) -> None:
        """Keep ``value`` under ``key`` (checked and copied): :meth:`Memory.remember`."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"a memory key is a non-empty str, not {key!r}")
        if not key.isprintable() and not _encodable(key):
            raise ValueError(f"a memory key must be valid Unicode, not {key!r}")
        expires_at = None
        if ttl is not None:
            expires_at = self._clock() + timedelta(seconds=parse_positive_duration(ttl))
        try:
            check_readable(value, inside=_VALUE_DEPTH)
            copy = pydantic_core.from_json(pydantic_core.to_json(value))
        except ValueError as exc:  # not JSON, NaN or infinity, nested too deeply
            raise ValueError(f"ctx.memory.remember({key!r}): the value is not JSON: {exc}") from exc
        self._working[key] = Remembered(value=copy, expires_at=expires_at)

    def recall(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, unless it expired: :meth:`Memory.recall`."""
        entry = self._working.get(key)
        if entry is None or entry.expired(self._clock()):
            return default
        value = entry.value
        if isinstance(value, dict | list):  # a copy: the remembered value stays as it was
            return pydantic_core.from_json(pydantic_core.to_json(value))
        return value

    def forget(self, key: str) -> None:
        """Forget ``key``: :meth:`Memory.forget`."""
        self._working.pop(key, None)

    # -- notes -------------------------------------------------------------------------

    def note(self, text: str, *, tags: Sequence[str] = (), importance: int = 5) -> None:
        """Hold a note (checked, redacted) until the run is kept: :meth:`Memory.note`."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a note is a non-empty str, not {text!r:.80}")
        if len(text) > MAX_NOTE_CHARS:
            raise ValueError(f"a note is at most {MAX_NOTE_CHARS} characters, not {len(text)}")
        labels = [] if isinstance(tags, str) else list(tags)
        if isinstance(tags, str) or not all(isinstance(tag, str) and tag for tag in labels):
            raise ValueError(f"tags are a list of non-empty strs, not {tags!r:.80}")
        if len(labels) > MAX_TAGS:
            raise ValueError(f"a note has at most {MAX_TAGS} tags, not {len(labels)}")
        if isinstance(importance, bool) or not isinstance(importance, int):
            raise ValueError(f"importance is an int from 1 to 10, not {importance!r}")
        if not 1 <= importance <= 10:  # noqa: PLR2004 - the scale, as documented
            raise ValueError(f"importance is an int from 1 to 10, not {importance!r}")
        # Redacted at once (and again when written, by then knowing more
        # secrets): text that is not valid Unicode is escaped on the way.
        self._notes.append(
            self._redacted(Note(text, tuple(labels), self._clock(), importance, self.run_id))
        )

    def relevant(self, query: str, k: int = 5) -> list[Note]:
        """The notes most relevant to ``query``: :meth:`Memory.relevant`."""
        if not isinstance(query, str):
            raise TypeError(f"a query is a str, not {type(query).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k is an int of at least 1, not {k!r}")
        try:
            notes = self._searchable()
            if notes is None:
                return []
            return notes.search(query, k=k, now=self._clock(), weights=self.config)
        except AgentOpsError as exc:  # the notes file: not the agent's failure
            if self._stop is not None:
                self._stop(exc)
            raise

    def _searchable(self) -> NoteFile | SharedNotes | None:
        stored = self._stored()
        if not self._notes:
            return stored
        if isinstance(stored, SharedNotes):  # searched with the stored ones, by the database
            return stored.including(self._notes)
        if self._scratch is None:
            self._scratch = NoteFile.scratch(stored, agent=self.agent)
            self._in_scratch = 0
        self._scratch.add(self._notes[self._in_scratch :])
        self._in_scratch = len(self._notes)
        return self._scratch

    def _stored(self) -> NoteFile | SharedNotes | None:
        # A real run opens the file to write: it may have to roll back a write
        # a crash cut short. A dry run only reads.
        if self._shared is not None:
            return SharedNotes(self._shared, agent=self.agent)
        if not self._opened:
            writable = not self.dry_run and self.path.exists()
            self._file = NoteFile.open(self.path, agent=self.agent, fs=self._fs, writable=writable)
            self._opened = True
        return self._file

    # -- the run's transaction ---------------------------------------------------------

    def rewind(self) -> None:
        """Start an attempt afresh: working memory as loaded, no notes made."""
        self._working = dict(self._loaded)
        self._notes = []
        self._close_scratch()

    @property
    def pending(self) -> int:
        """How many notes this attempt has made (written if the run succeeds)."""
        return len(self._notes)

    def kept(self) -> dict[str, Remembered]:
        """The working memory to save: entries not expired, their keys and values redacted.

        A key holding a secret keeps a digest of it in its place, so two
        such keys stay two keys; a value under a key named like a secret is
        redacted whole.
        """
        kept: dict[str, Remembered] = {}
        now = self._clock()
        for key, entry in self._working.items():
            if entry.expired(now):
                continue
            (value,) = self._redactor.value({key: entry.value}).values()
            kept[self._redactor.identifier(key)] = Remembered(
                value=value, expires_at=entry.expires_at
            )
        return kept

    def save_notes(self) -> tuple[int, int]:
        """Write the notes this run made and bound the file; return (written, dropped).

        Nothing in a dry run. Raises :class:`~agentops.errors.StateError` if
        the file cannot be written.
        """
        if self.dry_run or not self._notes:
            return 0, 0
        notes = [self._redacted(note) for note in self._notes]
        self.close()
        if self._shared is not None:
            dropped = SharedNotes(self._shared, agent=self.agent).add(
                notes, keep=self.config.keep_notes
            )
            self._notes = []
            return len(notes), dropped
        file = NoteFile.open(self.path, agent=self.agent, fs=self._fs, writable=True)
        assert file is not None  # noqa: S101 - opened to write, it exists
        try:
            dropped = file.add(notes, keep=self.config.keep_notes)
        finally:
            file.close()
        self._notes = []
        return len(notes), dropped

    def _redacted(self, note: Note) -> Note:
        text: str = self._redactor.value(note.text)
        tags: list[str] = self._redactor.value(list(note.tags))
        return Note(text, tuple(tags), note.at, note.importance, note.run_id)

    def close(self) -> None:
        """Close the notes file and the scratch copy (``relevant()`` opens them again)."""
        self._close_scratch()
        if self._file is not None:
            self._file.close()
        self._file = None
        self._opened = False

    def _close_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.close()
        self._scratch = None
        self._in_scratch = 0


def _encodable(text: str) -> bool:
    # A lone surrogate (a file name in another encoding) cannot be written as JSON.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
