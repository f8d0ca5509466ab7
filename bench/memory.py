"""Searching an agent's notes: ``ctx.memory.relevant()`` over 10,000 notes.

A note file holds ``[memory] keep_notes`` notes (1,000 by default; up to a
million): an agent that notes a few things every run fills 10,000 in a few
months. Each note is twelve words of a forty-word vocabulary, so a query of
three words matches more than half of them: every one is a candidate, scored
in Python (relevance from bm25, recency, importance). Two figures, each
against a baseline measured in the same run, alternating:

- ``relevant(query, k=5)`` of a run's ``ctx.memory`` whose file is open
  (the second and later searches of a run), against a bare FTS5 ``MATCH``
  of the same query, ranked by bm25 alone (``ORDER BY rank LIMIT 5``);
  target under 20 ms;
- a run's first ``relevant()``: opening the file (links refused, the
  schema checked) and searching, against ``sqlite3.connect`` and the bare
  query; target under 20 ms.

    python bench/memory.py [--notes 10000] [--rounds 30] [--quick]

Exits 1 if a figure passes its target.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bench import Row, alternate, report, time_row, timed
from agentops._infra.fs import FileSystem
from agentops._infra.redact import Redactor
from agentops.memory.notes import Note, NoteFile, fts_query
from agentops.memory.run import RunMemory
from agentops.project.config import MemoryConfig

TARGET_MS = 20.0

WORDS = (
    "deploy",
    "database",
    "backup",
    "failed",
    "succeeded",
    "latency",
    "disk",
    "memory",
    "cpu",
    "network",
    "timeout",
    "retry",
    "customer",
    "invoice",
    "billing",
    "report",
    "weekly",
    "daily",
    "error",
    "warning",
    "cache",
    "index",
    "query",
    "server",
    "client",
    "api",
    "token",
    "user",
    "login",
    "payment",
    "refund",
    "shipping",
    "order",
    "stock",
    "price",
    "alert",
    "page",
    "oncall",
    "incident",
)

K = 5
"""Notes asked for: relevant()'s default."""

QUERIES = ("deploy failed disk", "billing refund customer", "latency alert oncall")

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def fill(path: Path, notes: int) -> None:
    """A notes file of ``notes`` notes, one a minute back from NOW, importance 1 to 10."""
    rng = random.Random(1)
    file = NoteFile.open(path, agent="bench", writable=True)
    if file is None:
        sys.exit("the notes file was not made")
    try:
        file.add(
            [
                Note(
                    " ".join(rng.choices(WORDS, k=12)),
                    tuple(rng.sample(WORDS, 2)),
                    NOW - timedelta(minutes=i),
                    rng.randint(1, 10),
                    "20261122T120000Z-000000",
                )
                for i in range(notes)
            ]
        )
        if file.count() != notes:
            sys.exit("the notes file does not hold every note")
    finally:
        file.close()


def run_memory(path: Path) -> RunMemory:
    """A run's ``ctx.memory`` over the notes at ``path``."""
    return RunMemory(
        agent="bench",
        run_id="20261122T120000Z-000000",
        working={},
        config=MemoryConfig(),
        path=path,
        clock=lambda: NOW,
        redactor=Redactor({}),
        fs=FileSystem(),
    )


class Bare:
    """The baseline: the same FTS5 query, ranked by bm25 alone, on a plain connection."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` read-only."""
        self.path = path
        self.db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)

    def search(self, query: str, db: sqlite3.Connection | None = None) -> list[int]:
        """The ids of the K best matches by bm25."""
        rows = (db or self.db).execute(
            "SELECT rowid FROM notes_fts WHERE notes_fts MATCH ? ORDER BY rank LIMIT ?",
            (fts_query(query), K),
        )
        return [row[0] for row in rows]

    def open_and_search(self, query: str) -> list[int]:
        """:meth:`search` on a connection of its own, as a run's first search."""
        db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)
        try:
            return self.search(query, db)
        finally:
            db.close()


def rows(*, quick: bool = False, notes: int | None = None, rounds: int | None = None) -> list[Row]:
    """relevant() on an open file, and a run's first relevant(), each against a bare MATCH."""
    notes = notes or (1_000 if quick else 10_000)
    rounds = rounds or (2 if quick else 30)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        path = Path(tmp) / "bench.memory.sqlite"
        fill(path, notes)
        memory = run_memory(path)
        bare = Bare(path)
        queries = iter(QUERIES * rounds * 2)
        if len(memory.relevant(QUERIES[0], K)) != K or len(bare.search(QUERIES[0])) != K:
            sys.exit("a query found fewer than five notes")
        warm_s, warm_bare_s = alternate(
            rounds,
            lambda: timed(lambda: bare.search(next(queries))),
            lambda: timed(lambda: memory.relevant(next(queries), K)),
        )

        def first_search() -> float:
            fresh = run_memory(path)
            try:
                return timed(lambda: fresh.relevant(next(queries), K))
            finally:
                fresh.close()

        cold_s, cold_bare_s = alternate(
            rounds, lambda: timed(lambda: bare.open_and_search(next(queries))), first_search
        )
        memory.close()
        bare.db.close()
    return [
        time_row(
            "memory",
            f"relevant() over {notes:,} notes, file open",
            warm_s,
            "bare FTS5 MATCH, bm25 top 5",
            warm_bare_s,
            target_s=TARGET_MS / 1000,
        ),
        time_row(
            "memory",
            f"a run's first relevant(), {notes:,} notes",
            cold_s,
            "connect + bare MATCH",
            cold_bare_s,
            target_s=TARGET_MS / 1000,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, help="notes in the file (default 10,000)")
    parser.add_argument("--rounds", type=int, help="searches measured (default 30)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small file")
    args = parser.parse_args()
    return report(rows(quick=args.quick, notes=args.notes, rounds=args.rounds))


if __name__ == "__main__":
    sys.exit(main())
