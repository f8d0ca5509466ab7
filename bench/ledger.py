"""Loading and saving a state file whose ledger holds 100,000 entries.

Every run loads the state and saves it again, and the ledger remembers every
guarded action for ``[ledger] keep`` (30 days by default): an agent doing a
few thousand actions a day carries a ledger this size. Prints the median
wall time of FileStateStore.load and .save (fsync and the .bak included).

    python bench/ledger.py [--entries 100000] [--rounds 5] [--target-ms 150]

Exits 1 if either median passes the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentops.ledger import Entry, iso_second
from agentops.state import AgentState, FileStateStore


def big_state(entries: int) -> AgentState:
    now = datetime.now(UTC)
    ledger = {
        "publish": {
            f"post-{i:06d}": Entry(
                iso_second(now - timedelta(seconds=i)),
                "committed",
                "20261122T031000Z-3fa2c1",
                f'{{"path":"outbox/post-{i:06d}.md"}}',
            ).line
            for i in range(entries)
        }
    }
    return AgentState(agent="bench", ledger=ledger)


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--target-ms", type=float, default=150.0)
    args = parser.parse_args()

    state = big_state(args.entries)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        store = FileStateStore(Path(tmp))
        store.save(state)
        size = store.path("bench").stat().st_size
        saves = [timed(lambda: store.save(state)) for _ in range(args.rounds)]
        loads = [timed(lambda: store.load("bench")) for _ in range(args.rounds)]
    save_ms, load_ms = statistics.median(saves), statistics.median(loads)
    print(f"state file with {args.entries:,} ledger entries: {size / 1e6:.1f} MB")
    print(f"load  {load_ms:6.1f} ms (median of {args.rounds})")
    print(f"save  {save_ms:6.1f} ms (median of {args.rounds})")
    ok = max(load_ms, save_ms) <= args.target_ms
    print(f"\n{'within' if ok else 'OVER'} the {args.target_ms:g} ms target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
