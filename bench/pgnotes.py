"""Searching an agent's notes on the PostgreSQL store: bm25 computed by the database.

The PostgreSQL store ranks notes by the bm25 SQLite's FTS5 gives them, so
that both stores return the same notes in the same order (issue 18). bm25
needs the average length of the agent's notes, which FTS5 keeps and
PostgreSQL counts at each search: a search reads every note of the agent.
This measures ``relevant(query, k=5)`` over a store's notes (the notes of
bench/memory.py: twelve words of forty, two tags; three-word queries that
match more than half of them), on a PostgreSQL server of the bench's own,
against the bare query PostgreSQL's own ranking answers (``ORDER BY
ts_rank LIMIT 5``, what the store did before), alternating:

- over 1,000 notes (``keep_notes``' default): target under 50 ms;
- over 10,000 notes: target under 0.5 s.

The targets are this bench's, not the issue's: a search in a run costs
about what a round trip of a few statements does. A notes file answers the
same searches in a few milliseconds (bench/memory.py).

    python bench/pgnotes.py [--rounds 15] [--quick]

Exits 1 if a figure passes its target.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import timedelta

from _bench import Row, alternate, report, time_row, timed
from agentops.memory.shared import SharedNotes
from agentops.project.config import MemoryConfig
from agentops.store.postgres import PostgresStore
from memory import NOW, QUERIES, WORDS, K
from store import start_server

TARGETS_S = {1_000: 0.05, 10_000: 0.5}
"""Notes in the store: the most a search over them may take (the median)."""

BARE = (
    "SELECT id FROM {s}.note, to_tsquery('english'::regconfig, %s) q "
    "WHERE agent = %s AND words @@ q ORDER BY ts_rank(words, q) DESC LIMIT %s"
)
"""The baseline: the same words ORed, ranked by ``ts_rank`` alone."""


def fill(store: PostgresStore, agent: str, notes: int) -> None:
    """``notes`` notes for ``agent``, as bench/memory.py makes them."""
    rng = random.Random(1)
    rows = [
        (
            " ".join(rng.choices(WORDS, k=12)),
            json.dumps(rng.sample(WORDS, 2)),
            (NOW - timedelta(minutes=i)).timestamp(),
            rng.randint(1, 10),
            "20261122T120000Z-000000",
        )
        for i in range(notes)
    ]
    for start in range(0, notes, 5_000):
        store.note_rows(agent).add(rows[start : start + 5_000], None)
    store.execute("ANALYZE {s}.note")


def measure(store: PostgresStore, notes: int, rounds: int) -> Row:
    """relevant() over ``notes`` notes, against the bare ts_rank query, alternating."""
    agent = f"bench{notes}"
    fill(store, agent, notes)
    shared = SharedNotes(store.note_rows(agent), agent=agent)
    queries = iter(QUERIES * rounds * 2)

    def bare() -> float:
        words = " | ".join(f"'{word}'" for word in next(queries).split())
        return timed(lambda: store.execute(BARE, (words, agent, K)).fetchall())

    def search() -> float:
        query = next(queries)
        return timed(lambda: shared.search(query, k=K, now=NOW, weights=MemoryConfig()))

    subject_s, bare_s = alternate(rounds, bare, search)
    return time_row(
        "pgnotes",
        f"relevant() over {notes:,} notes on PostgreSQL",
        subject_s,
        "bare ts_rank top 5",
        bare_s,
        target_s=TARGETS_S[notes],
    )


def rows(*, quick: bool = False, rounds: int | None = None) -> list[Row]:
    """relevant() over 1,000 and 10,000 notes, each against the bare ts_rank query."""
    rounds = rounds or (2 if quick else 15)
    server = start_server()
    try:
        store = PostgresStore(server.database())
        try:
            return [measure(store, notes, rounds) for notes in ([1_000] if quick else TARGETS_S)]
        finally:
            store.close()
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="searches measured at each size (default 15)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 notes")
    args = parser.parse_args()
    return report(rows(quick=args.quick, rounds=args.rounds))


if __name__ == "__main__":
    raise SystemExit(main())
