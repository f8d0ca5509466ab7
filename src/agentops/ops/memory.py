"""What an agent remembers, as people and scripts read it: ``agentops memory``.

A read model: it reads agent.toml (for ``[memory]``'s ranking), the state
(working memory) and the notes file, opened read-only. It never imports
agent code, never takes the agent's lock and never writes: a notes file a
crash left mid-write is refused (74) until the agent's next run rolls the
write back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentops._infra.timestamps import iso
from agentops.memory.notes import NoteFile
from agentops.memory.shared import SharedNotes
from agentops.store import open_store

if TYPE_CHECKING:
    from datetime import datetime

    from agentops.memory.notes import Note
    from agentops.model.state import Remembered
    from agentops.project.home import Project
    from agentops.store import Store

__all__ = ["DEFAULT_LIMIT", "KEYS", "NOTE_KEYS", "WORKING_KEYS", "MemoryView", "read_memory"]

KEYS = ("agent", "working", "notes", "notes_total", "search")
"""The keys of ``agentops memory --json``'s object, in order: a stable interface."""

WORKING_KEYS = ("key", "value", "expires_at")
"""The keys of each entry of ``working``."""

NOTE_KEYS = ("at", "importance", "tags", "text", "run_id", "score")
"""The keys of each entry of ``notes``."""

DEFAULT_LIMIT = 20
"""How many notes are shown unless told."""


@dataclass(frozen=True, slots=True)
class MemoryView:
    """An agent's memory at one moment: live working memory, and some of its notes."""

    agent: str
    working: dict[str, Remembered]
    """Entries whose time to live has not passed, by key."""
    notes: list[Note]
    """Newest first, or the best matches first for a search."""
    notes_total: int
    """How many notes the file holds."""
    search: str | None = None
    """The query the notes were ranked for, if any."""

    def recall(self, key: str, default: Any = None) -> Any:
        """The value remembered under ``key``, as ``ctx.memory.recall`` would give it."""
        entry = self.working.get(key)
        return default if entry is None else entry.value

    def row(self) -> dict[str, Any]:
        """The view as ``agentops memory --json`` prints it (:data:`KEYS`)."""
        return {
            "agent": self.agent,
            "working": [
                {
                    "key": key,
                    "value": entry.value,
                    "expires_at": None if entry.expires_at is None else iso(entry.expires_at),
                }
                for key, entry in sorted(self.working.items())
            ],
            "notes": [
                {
                    "at": iso(note.at),
                    "importance": note.importance,
                    "tags": list(note.tags),
                    "text": note.text,
                    "run_id": note.run_id,
                    "score": note.score,
                }
                for note in self.notes
            ],
            "notes_total": self.notes_total,
            "search": self.search,
        }


def read_memory(
    project: Project,
    name: str,
    *,
    now: datetime,
    search: str | None = None,
    limit: int = DEFAULT_LIMIT,
    store: Store | None = None,
) -> MemoryView:
    """The memory of the agent ``name`` at ``now``: notes newest first, or ranked for ``search``."""
    spec = project.agent(name)  # an unknown agent is an error, not an empty memory
    store = store or open_store(project)
    state = store.load(name)
    working = {key: entry for key, entry in state.memory.items() if not entry.expired(now)}
    rows = store.note_rows(name)
    file = (
        SharedNotes(rows, agent=name)
        if rows is not None
        else NoteFile.open(project.memory_path(name), agent=name)
    )
    if file is None:
        return MemoryView(name, working, [], 0, search)
    try:
        if search is None:
            notes = file.newest(limit)
        else:
            notes = file.search(search, k=limit, now=now, weights=spec.config.memory)
        total = file.count()
    finally:
        file.close()
    return MemoryView(name, working, notes, total, search)
