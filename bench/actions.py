"""The cost of exactly-once: guarded actions against raw append+fsync writes.

A guarded action appends two records to the run's journal, an intent before
the side effect and a commit after it, and fsyncs only the intent: the
commit is made durable by the next record's fsync (or the state's). This
measures, in one run and on the same disk, a real run of an agent doing N
trivial ctx.action calls (state load and save, journal, ledger, logging
included) against 2N raw `os.write` + `os.fsync` appends, alternating the
two, and prints the median ratio. The target asks that exactly-once cost
less than writing both records durably by hand.

    python bench/actions.py [--actions 10000] [--rounds 5] [--target 0.6] [--quick]

Exits 1 if the median ratio passes the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _bench import (
    TOUCH_AGENT,
    Row,
    alternate,
    forget_runs,
    ratio_row,
    report,
    timed,
    write_agent,
)
from agentops.project.home import Project
from agentops.run.runner import run_agent

TARGET = 0.6

AGENT = TOUCH_AGENT

RECORD = b'{"op":"intent","run_id":"20261122T031000Z-3fa2c1","action":"touch","key":"k"}\n'


def raw_appends(path: Path, count: int) -> float:
    """Seconds to append ``count`` journal-sized records to a new file, fsyncing each."""

    def append() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for _ in range(count):
                os.write(fd, RECORD)
                os.fsync(fd)
        finally:
            os.close(fd)

    elapsed = timed(append)
    path.unlink()
    return elapsed


def agent_run(project: Project, name: str, overrides: dict[str, int]) -> float:
    """Seconds of one in-process run of ``name``, which must succeed; its state is removed after.

    Every round then starts from an empty state and ledger, like the first.
    """
    outcome = None

    def run() -> None:
        nonlocal outcome
        outcome = run_agent(project, name, overrides=overrides, environ={})

    elapsed = timed(run)
    if outcome is None or outcome.exit_code != 0:
        sys.exit(f"the benchmark agent {name} failed: {outcome and outcome.message}")
    forget_runs(project.state_dir, name)
    return elapsed


def rows(
    *,
    quick: bool = False,
    actions: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
) -> list[Row]:
    """A run of N guarded actions against 2N raw append+fsync writes."""
    actions = actions or (300 if quick else 10_000)
    rounds = rounds or (1 if quick else 5)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        write_agent(home, "touch", AGENT, 'timeout = "1h"\n')
        (home / "state").mkdir()
        project = Project.locate(home)
        agent_run(project, "touch", {"actions": 10})  # imports and page cache warm
        subject_s, baseline_s = alternate(
            rounds,
            lambda: raw_appends(home / "state" / "raw.journal", 2 * actions),
            lambda: agent_run(project, "touch", {"actions": actions}),
        )
    return [
        ratio_row(
            "actions",
            f"{actions:,} guarded actions (a run)",
            subject_s,
            f"{2 * actions:,} raw append+fsync",
            baseline_s,
            target=target,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, help="guarded actions in the run (default 10,000)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 5)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest acceptable ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few actions, one round")
    args = parser.parse_args()
    return report(
        rows(quick=args.quick, actions=args.actions, rounds=args.rounds, target=args.target)
    )


if __name__ == "__main__":
    sys.exit(main())
