"""The two stores rank an agent's notes alike: SQLite's FTS5 bm25 and PostgreSQL's own search.

The same notes go into a real notes file (SQLite, as the file store keeps
them) and into the real PostgreSQL store (tests/pgserver.py); every query
must give the same notes, in the same order, with the same scores. The
notes are realistic: of different lengths, with stop words, repeated words,
hyphenated host names and tags; queries of one to three words, stemmed
forms of one word among them; ties left to recency and importance. The
orders that once differed (a shorter note, a rarer word) are spelt out.
The differences that remain are the two tokenizers' (docs/memory.md); the
last test pins the one a query can meet most often, a stop word.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from agentops.memory.notes import Note, NoteFile
from agentops.memory.shared import SharedNotes
from agentops.project.config import MemoryConfig
from suite import T0

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from agentops.store.postgres import PostgresStore

RELEVANCE = MemoryConfig(relevance_weight=1, recency_weight=0, importance_weight=0)
WEIGHTS = [
    RELEVANCE,
    MemoryConfig(),
    MemoryConfig(relevance_weight=3, recency_half_life="1w"),
    MemoryConfig(relevance_weight=0.5, importance_weight=2, recency_half_life="6h"),
]

NOTES = [  # (text, tags, hours ago, importance)
    ("disk full on db-1", ["ops"], 30, 5),
    ("the disk on db-1 was full again after the nightly backup of the billing database", [], 2, 5),
    ("backup backup backup", [], 72, 1),
    ("the nightly backup ran and then the cache was warm", ["ops", "db"], 1, 4),
    ("restore the backup of the billing db before any migration", ["billing"], 72, 10),
    ("a backup of db two finished late but was done", [], 40, 5),
    ("deployed web-2 with the new certificate", ["deploy"], 5, 6),
    ("deploys failed twice: the certificate had expired", ["deploy", "tls"], 50, 8),
    ("kernel upgrade on db-1 needs a restart", ["ops"], 12, 7),
    ("kernel", [], 100, 2),
    ("replica lag on eu-west-1 during the nightly backup window", ["db"], 8, 6),
    ("the weather is fine", [], 0, 10),
    ("pager alert: disk latency on db-2, disk queue long, disk busy", ["ops", "pager"], 20, 9),
    ("memory leak in the queue worker; restart it nightly until fixed", ["worker"], 26, 7),
    ("rollback of the billing migration took an hour", ["billing", "db"], 60, 8),
    ("dns outage: the network partition cut eu-west-1 off for ten minutes", ["net"], 90, 9),
    # Twins: the same words, so bm25 ties them; recency, then importance, decide.
    ("cron timeout on the backup host", [], 10, 3),
    ("cron timeout on the backup host", [], 10, 6),
    ("cron timeout on the backup host", [], 4, 3),
]

QUERIES = [
    "backup",
    "disk full",
    "nightly backup",
    "kernel restart",
    "deploys deployed certificate",
    "billing migration rollback",
    "db",
    "ops",
    "eu west replica lag",
    "cron timeout",
    "pager disk",
    "weather",
    "memory leak queue",
]


def note(text: str, tags: Sequence[str] = (), hours_ago: float = 0, importance: int = 5) -> Note:
    return Note(text, tuple(tags), T0 - timedelta(hours=hours_ago), importance, "r")


@pytest.fixture
def both(tmp_path, store) -> Iterator[Stores]:
    """The two stores, empty."""
    stores = Stores(tmp_path, store)
    yield stores
    stores.close()


class Stores:
    """One agent's notes in a notes file and in the PostgreSQL store: written, searched alike."""

    def __init__(self, tmp_path: Path, store: PostgresStore) -> None:
        file = NoteFile.open(tmp_path / "a.memory.sqlite", agent="a", writable=True)
        assert file is not None
        self.file: NoteFile = file
        self.shared = SharedNotes(store.note_rows("a"), agent="a")
        self._scratch: NoteFile | None = None

    def add(self, notes: Sequence[Note]) -> None:
        self.file.add(notes)
        self.shared.add(notes)

    def pending(self, notes: Sequence[Note]) -> None:
        """``notes`` made by the run and not written: searched as if written, on both."""
        self._scratch = NoteFile.scratch(self.file, agent="a")
        self._scratch.add(notes)
        self.shared = self.shared.including(notes)

    @property
    def searched_file(self) -> NoteFile:
        """The notes file a search reads: with the pending notes, a copy in memory."""
        return self._scratch or self.file

    def search(self, query: str, weights: MemoryConfig, k: int = 5) -> tuple[list, list]:
        """What each store returns: ``(text, importance, score)`` best first."""
        file = self.searched_file
        return tuple(
            [
                (n.text, n.importance, n.score)
                for n in found.search(query, k=k, now=T0, weights=weights)
            ]
            for found in (file, self.shared)
        )

    def close(self) -> None:
        self.file.close()
        if self._scratch is not None:
            self._scratch.close()


def same(on_sqlite: list, on_postgresql: list) -> bool:
    """The same notes in the same order, the same scores but for the last bits of a double."""
    return [(t, i) for t, i, _ in on_sqlite] == [(t, i) for t, i, _ in on_postgresql] and all(
        a == pytest.approx(b, rel=1e-12, abs=1e-12)
        for (_, _, a), (_, _, b) in zip(on_sqlite, on_postgresql, strict=True)
    )


def test_realistic_notes_are_ranked_alike_for_every_query_and_weights(both):
    """Every query, four sets of weights, the top 5 and every match: the same on both stores."""
    both.add([note(text, tags, hours, importance) for text, tags, hours, importance in NOTES])
    for query in QUERIES:
        for weights in WEIGHTS:
            for k in (5, 50):
                on_sqlite, on_postgresql = both.search(query, weights, k)
                assert on_sqlite, query
                assert same(on_sqlite, on_postgresql), (query, weights, on_sqlite, on_postgresql)


def test_pending_notes_count_in_the_corpus_alike(both):
    """A run's notes not yet written change the IDF and the average length on both alike."""
    both.add([note(text, tags, hours, importance) for text, tags, hours, importance in NOTES])
    both.pending(
        [
            note("disk disk disk", hours_ago=0, importance=2),
            note("a very long note about the kernel and the disk and then some more words", [], 3),
        ]
    )
    for query in ("disk", "kernel disk", "backup"):
        for weights in WEIGHTS:
            on_sqlite, on_postgresql = both.search(query, weights, k=50)
            assert same(on_sqlite, on_postgresql), (query, on_sqlite, on_postgresql)


def test_a_tie_goes_to_the_run_s_own_note_as_in_the_notes_file(both):
    """A pending note tied with a stored one on every part comes first on both stores."""
    stored = note("disk full on db-1", ["ops"], hours_ago=1)
    both.add([stored, note("the weather is fine")])
    both.pending([note("disk full on db-1", ["net"], hours_ago=1)])
    for weights in (MemoryConfig(), RELEVANCE):
        on_sqlite, on_postgresql = both.search("disk", weights, k=5)
        assert same(on_sqlite, on_postgresql)
        assert len({score for _, _, score in on_postgresql}) == 1
        for notes in (both.searched_file, both.shared):
            tags = [n.tags for n in notes.search("disk", k=5, now=T0, weights=weights)]
            assert tags == [("net",), ("ops",)]


def test_a_shorter_note_and_a_rarer_word_rank_higher_on_both(both):
    """The two orders ts_rank got wrong: bm25 counts a note's length and a word's rarity.

    Of two notes holding "disk" once, the shorter is the more relevant; a
    note holding "kernel" (in one note of six) outranks one holding "disk"
    (in four), each once in notes of equal length.
    """
    both.add(
        [
            note("disk full", hours_ago=1),
            note("the disk on db-1 was full again after the nightly backup", hours_ago=1),
            note("disk is slow today", hours_ago=1),
            note("kernel is old today", hours_ago=1),
            note("disk space", hours_ago=1),
            note("the weather is fine", hours_ago=1),
        ]
    )
    on_sqlite, on_postgresql = both.search("disk", RELEVANCE)
    texts = [text for text, _, _ in on_postgresql]
    assert texts[0] in {"disk full", "disk space"}
    assert texts[-1].startswith("the disk on db-1")
    assert same(on_sqlite, on_postgresql)
    on_sqlite, on_postgresql = both.search("disk kernel", RELEVANCE, k=10)
    assert on_postgresql[0][0] == "kernel is old today"
    assert same(on_sqlite, on_postgresql)


def test_ties_go_to_recency_then_importance_alike(both):
    """Notes bm25 cannot tell apart are ordered by recency and importance, on both stores."""
    both.add(
        [
            note("cron timeout on the backup host", hours_ago=10, importance=3),
            note("cron timeout on the backup host", hours_ago=10, importance=6),
            note("cron timeout on the backup host", hours_ago=4, importance=3),
            note("cron timeout on the backup host", hours_ago=4, importance=3),
        ]
    )
    for weights in (MemoryConfig(), RELEVANCE):
        on_sqlite, on_postgresql = both.search("cron", weights, k=10)
        assert same(on_sqlite, on_postgresql)
    _, on_postgresql = both.search("cron", MemoryConfig(), k=10)
    # 10 h old and important (0.75 + 0.6) beats 4 h old (0.89 + 0.3) twice, then 10 h (0.75 + 0.3).
    assert [importance for _, importance, _ in on_postgresql] == [6, 3, 3, 3]
    scores = [score for _, _, score in on_postgresql]
    assert scores[0] > scores[1] == scores[2] > scores[3]


def test_generated_notes_rank_alike(both):
    """Three hundred notes drawn from an ops vocabulary (seeded): 60 queries, identical tops."""
    rng = random.Random(18)
    vocabulary = [
        *("backup", "disk", "database", "replica", "migration", "deploy", "deployed", "deploys"),
        *("failed", "failure", "timeout", "latency", "cache", "nightly", "restore", "billing"),
        *("queue", "worker", "cron", "alert", "pager", "certificate", "expired", "memory"),
        *("leak", "restart", "kernel", "upgrade", "rollback", "network", "partition", "dns"),
    ]
    stop = ["the", "a", "of", "and", "on", "in", "was", "to", "it", "is", "then", "before"]
    hosts = ["db-1", "web-2", "eu-west-1"]
    notes = []
    for _ in range(300):
        length = rng.choice([2, 3, 4, 6, 8, 10, 14, 20, 30, 45])
        common = vocabulary[: rng.choice([8, 16, len(vocabulary)])]
        text = [
            rng.choice(stop) if rng.random() < 0.3 else rng.choice(common) for _ in range(length)
        ]
        if rng.random() < 0.3:
            text.insert(rng.randrange(len(text) + 1), rng.choice(hosts))
        tags = rng.sample(["ops", "db", "net", "billing"], rng.choice([0, 1, 2]))
        notes.append(note(" ".join(text), tags, rng.uniform(0, 200), rng.randint(1, 10)))
    both.add(notes)
    for _ in range(60):
        query = " ".join(rng.sample(vocabulary, rng.choice([1, 2, 3])))
        for weights in (RELEVANCE, MemoryConfig()):
            on_sqlite, on_postgresql = both.search(query, weights, k=5)
            assert same(on_sqlite, on_postgresql), (query, on_sqlite, on_postgresql)


def test_a_stop_word_of_the_query_finds_notes_only_on_sqlite(both):
    """What remains different: PostgreSQL's english configuration drops stop words.

    SQLite indexes "the" and finds every note holding it (with a relevance
    of almost nothing: its IDF is clamped to 1e-6 once half the notes hold
    it); PostgreSQL never indexed it, so only the notes holding another word
    of the query are found. The notes both find are ranked alike.
    """
    both.add([note("the weather is fine", importance=10), note("disk full on db-1")])
    on_sqlite, on_postgresql = both.search("the disk", MemoryConfig(), k=5)
    assert [text for text, _, _ in on_sqlite] == ["the weather is fine", "disk full on db-1"]
    assert [text for text, _, _ in on_postgresql] == ["disk full on db-1"]
    assert same(*both.search("disk", MemoryConfig()))
