"""A ledger of 100,000 entries: loading and saving it, and what it costs a run that ignores it.

The ledger remembers every guarded action for ``[ledger] keep`` (30 days by
default): an agent doing a few thousand actions a day carries a ledger this
size. It lives in ``state/<name>.ledger.json``, beside the state, and a run
reads it only when it performs a guarded action (or recovers a crashed run's).
Three figures, each against a baseline measured in the same run:

- load: ``FileStore.load_ledger`` (parse and validate every entry) against
  ``json.loads`` of the same file; target under 150 ms;
- save: ``FileStore.commit`` of a small state with the ledger changed (temp
  file, fsync, ``.bak``, rename, directory fsync) against writing and
  fsyncing the ledger file's bytes by hand; target under 150 ms;
- a real ``agentops run`` (a subprocess) of an agent whose ledger holds
  100,000 entries and which performs no guarded action, against the same run
  of an agent with an empty ledger, alternating: at most 1.1x.

    python bench/ledger.py [--entries 100000] [--rounds 5] [--runs 20] [--quick]

Exits 1 if a figure passes its target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bench import (
    Row,
    agentops_executable,
    alternate,
    ratio_row,
    report,
    time_row,
    timed,
    wall_s,
    write_agent,
)
from agentops._infra.timestamps import iso_second
from agentops.model.ledger import Entry, Ledger
from agentops.model.state import AgentState, LedgerSummary
from agentops.store.file import FileStore

TARGET_MS = 150.0
TARGET_RUN = 1.1

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    runs: int

def run(params: Params, ctx: Context) -> Result:
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(runs=ctx.state["runs"])
"""


def big_ledger(entries: int) -> Ledger:
    """A ledger of ``entries`` committed actions, one a second back from now."""
    now = datetime.now(UTC)
    ledger = Ledger(
        {
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
    )
    ledger.changed = True
    return ledger


def state_of(name: str, ledger: Ledger | None) -> AgentState:
    """A fresh state for ``name``, its ledger summary matching ``ledger``."""
    state = AgentState(agent=name)
    if ledger is not None:
        state.ledger_summary = LedgerSummary.of(ledger.entries)
    return state


def commit(store: FileStore, state: AgentState, ledger: Ledger | None) -> None:
    """Commit ``state`` and ``ledger`` (marked changed, so it is written), as a run would."""
    if ledger is not None:
        ledger.changed = True
    with store.lease(state.agent, run_id="20261122T031000Z-3fa2c1") as lease:
        store.commit(lease, state, ledger=ledger)


def raw_write(path: Path, data: bytes) -> float:
    """Seconds to write ``data`` to a new file and fsync it."""

    def write() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    elapsed = timed(write)
    path.unlink()
    return elapsed


def file_rows(entries: int, rounds: int, target_ms: float) -> list[Row]:
    """Load and save of the ledger file, each against its raw counterpart."""
    ledger = big_ledger(entries)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        store = FileStore(Path(tmp) / "state")
        state = state_of("bench", ledger)
        commit(store, state, ledger)
        path = store.path("bench", ".ledger.json")
        data = path.read_bytes()
        if len(store.load_ledger("bench")) != entries:
            sys.exit("the ledger did not load back whole")
        load_s, parse_s = alternate(
            rounds,
            lambda: timed(lambda: json.loads(path.read_bytes())),
            lambda: timed(lambda: store.load_ledger("bench")),
        )
        save_s, write_s = alternate(
            rounds,
            lambda: raw_write(Path(tmp) / "raw.json", data),
            lambda: timed(lambda: commit(store, state, ledger)),
        )
    size = f"{len(data) / 1e6:.1f} MB"
    return [
        time_row(
            "ledger",
            f"load a ledger of {entries:,} entries ({size})",
            load_s,
            "json.loads of its file",
            parse_s,
            target_s=target_ms / 1000,
        ),
        time_row(
            "ledger",
            f"save it (FileStore.commit, {entries:,} entries)",
            save_s,
            "write+fsync its bytes",
            write_s,
            target_s=target_ms / 1000,
        ),
    ]


def run_row(entries: int, runs: int, target: float) -> Row:
    """`agentops run` with a big ledger and no action, against the same with an empty ledger."""
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        home = Path(tmp)
        for name in ("big", "empty"):
            write_agent(home, name, AGENT)
        store = FileStore(home / "state")
        ledger = big_ledger(entries)
        commit(store, state_of("big", ledger), ledger)
        commit(store, state_of("empty", None), None)
        commands = {name: [agentops, "--home", str(home), "run", name] for name in ("big", "empty")}
        for command in commands.values():  # warm the page cache and the .pyc files
            wall_s(command)
        big_s, empty_s = alternate(
            runs, lambda: wall_s(commands["empty"]), lambda: wall_s(commands["big"])
        )
        if len(store.load_ledger("big")) != entries:
            sys.exit("the big ledger changed during the runs")
    return ratio_row(
        "ledger",
        f"agentops run, {entries:,} ledger entries, no action",
        big_s,
        "the same, empty ledger",
        empty_s,
        target=target,
    )


def rows(
    *,
    quick: bool = False,
    entries: int | None = None,
    rounds: int | None = None,
    runs: int | None = None,
    target_ms: float = TARGET_MS,
    target_run: float = TARGET_RUN,
) -> list[Row]:
    """Load, save, and a run that leaves the ledger alone."""
    entries = entries or (10_000 if quick else 100_000)
    rounds = rounds or (1 if quick else 5)
    runs = runs or (3 if quick else 20)
    return [*file_rows(entries, rounds, target_ms), run_row(entries, runs, target_run)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, help="entries in the ledger (default 100,000)")
    parser.add_argument("--rounds", type=int, help="loads and saves measured (default 5)")
    parser.add_argument("--runs", type=int, help="agentops runs of each agent (default 20)")
    parser.add_argument("--target-ms", type=float, default=TARGET_MS, help="load and save target")
    parser.add_argument("--target-run", type=float, default=TARGET_RUN, help="run ratio target")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small ledger")
    args = parser.parse_args()
    return report(
        rows(
            quick=args.quick,
            entries=args.entries,
            rounds=args.rounds,
            runs=args.runs,
            target_ms=args.target_ms,
            target_run=args.target_run,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
