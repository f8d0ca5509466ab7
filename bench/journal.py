"""A crashed run's journal of 200,000 records: recovered by the next run, and listed.

A run killed after hours of work leaves a long journal: every guarded
action's intent and commit, every spend. The next run folds it into the
state and the ledger before doing anything else, and ``agentops ledger AGENT
--all --json`` folds it in memory to show what the dead run did. Both must be
linear in the records: this times each on a journal of 50,000 and of 200,000
records (two thirds action records, one third spends, over the hour before
the crash), as real `agentops` subprocesses, alternating the sizes, and
prints

- the ratio of the two times, each net of the same command's time with no
  journal (start-up and the run itself, measured in the same rounds): about
  4x when linear, target at most 5x;
- the time for 200,000 records (target under a minute), beside the time
  Python's ``json.loads`` takes to parse the journal's lines, for scale.

    python bench/journal.py [--records 200000] [--small 50000] [--rounds 3] [--quick]

Exits 1 if a figure passes its target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from _bench import (
    ENV,
    Row,
    agentops_executable,
    interleave,
    report,
    time_row,
    timed,
    wall_s,
    write_agent,
)
from agentops.model.journal import Begin, Commit, Intent, Spend, encode
from agentops.store.file import FileStore

if TYPE_CHECKING:
    from collections.abc import Callable

TARGET_RATIO = 5.0
TARGET_S = 60.0

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    return Result(ok=True)
"""

# Caps and an action rate limit the recovered spends and commits count against.
TOML = """
timeout = "1h"

[limits]
cost_usd_per_hour = 1000000.0
cost_usd_per_day = 1000000.0

[limits.actions]
publish = "1000000/day"
"""

NAME = "crashed"
RUN_ID = "20261122T031000Z-3fa2c1"


def crashed_journal(records: int) -> tuple[bytes, int]:
    """A journal of a ``begin`` and ``records`` records; returns it and how many actions it holds.

    Each group of three records is an action's intent and commit and a spend,
    spread evenly over the hour before now; the run died after the last one.
    """
    now = datetime.now(UTC)
    started = now - timedelta(hours=1)
    lines = [encode(Begin.model_construct(run_id=RUN_ID, at=started, agent=NAME, kind="run"))]
    actions = 0
    for index in range(records):
        at = started + timedelta(seconds=3600 * index / records)
        key = f"item-{index // 3:07d}"
        match index % 3:
            case 0:
                record = Intent.model_construct(run_id=RUN_ID, at=at, action="publish", key=key)
                actions += 1
            case 1:
                result = {"path": f"outbox/{key}.md"}
                record = Commit.model_construct(
                    run_id=RUN_ID, at=at, action="publish", key=key, result=result
                )
            case _:
                record = Spend.model_construct(run_id=RUN_ID, at=at, usd=0.0001, tokens=40)
        lines.append(encode(record))
    return b"".join(lines), actions


def crash(home: Path, journal: bytes | None) -> None:
    """Leave ``home`` as the crashed run left it: no state yet, only its journal (if any)."""
    state = home / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    if journal is not None:
        (state / f"{NAME}.journal").write_bytes(journal)


def parse_lines(journal: bytes) -> float:
    """Seconds for ``json.loads`` of every line: the floor of reading the journal back."""
    return timed(lambda: [json.loads(line) for line in journal.splitlines()])


def rows(
    *,
    quick: bool = False,
    records: int | None = None,
    small: int | None = None,
    rounds: int | None = None,
    target_ratio: float = TARGET_RATIO,
    target_s: float = TARGET_S,
) -> list[Row]:
    """Recovering and listing a big crashed journal, against a quarter of it and parsing it."""
    records = records or (8_000 if quick else 200_000)
    small = small or records // 4
    rounds = rounds or (1 if quick else 3)
    agentops = agentops_executable()
    journals = {size: crashed_journal(size) for size in (small, records)}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        write_agent(home, NAME, AGENT, TOML)
        commands = {
            "recover": [agentops, "--home", str(home), "run", NAME],
            "list": [agentops, "--home", str(home), "ledger", NAME, "--all", "--json"],
        }
        check(home, commands, journals[small])

        def measure(command: list[str], size: int) -> Callable[[], float]:
            def once() -> float:
                crash(home, journals[size][0] if size else None)
                return wall_s(command)

            return once

        times = {
            what: interleave(rounds, {size: measure(command, size) for size in (0, small, records)})
            for what, command in commands.items()
        }
        parse_s = [parse_lines(journals[records][0]) for _ in range(rounds)]

    def n(size: int) -> str:
        return f"{size:,} records"

    figures = {"recover": "(agentops run)", "list": "(ledger --all --json)"}
    found = [
        linearity(
            f"{what} {n(records)} {figures[what]}",
            times[what][records],
            f"{what} {n(small)}",
            times[what][small],
            times[what][0],
            target=target_ratio,
        )
        for what in commands
    ]
    found += [
        time_row(
            "journal",
            f"{what} {n(records)} {figures[what]}",
            times[what][records],
            "json.loads of its lines",
            parse_s,
            target_s=target_s,
        )
        for what in commands
    ]
    return found


def linearity(
    figure: str,
    big_s: list[float],
    baseline: str,
    small_s: list[float],
    none_s: list[float],
    *,
    target: float,
) -> Row:
    """A ratio row of the big journal's time to the small one's, each net of start-up.

    The same command with no journal at all, measured in the same rounds, is
    the fixed cost (start-up, the run itself) taken from both: left in, it
    would flatter the ratio towards 1.
    """
    samples = tuple(
        (big - none) / (small - none) if small > none else float("inf")
        for big, small, none in zip(big_s, small_s, none_s, strict=True)
    )
    return Row(
        "journal",
        figure,
        statistics.median(big_s),
        f"{baseline} (net of {statistics.median(none_s) * 1000:.0f} ms with none)",
        statistics.median(small_s),
        "x",
        target,
        samples,
    )


def check(home: Path, commands: dict[str, list[str]], journal: tuple[bytes, int]) -> None:
    """Exit unless listing shows the journal's actions and a run recovers them all."""
    data, actions = journal
    crash(home, data)
    shown = subprocess.run(commands["list"], env=ENV, check=True, capture_output=True).stdout
    if len(json.loads(shown)) != actions:
        sys.exit(f"the listing does not show the {actions:,} actions of the crashed journal")
    wall_s(commands["recover"])
    ledger = FileStore(home / "state").load_ledger(NAME)
    if len(ledger) != actions or (home / "state" / f"{NAME}.journal").exists():
        sys.exit(f"the run did not recover the {actions:,} actions of the crashed journal")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, help="records in the big journal (default 200,000)")
    parser.add_argument("--small", type=int, help="records in the small one (default a quarter)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 3)")
    parser.add_argument("--target-ratio", type=float, default=TARGET_RATIO)
    parser.add_argument("--target-s", type=float, default=TARGET_S)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small journals")
    args = parser.parse_args()
    return report(
        rows(
            quick=args.quick,
            records=args.records,
            small=args.small,
            rounds=args.rounds,
            target_ratio=args.target_ratio,
            target_s=args.target_s,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
