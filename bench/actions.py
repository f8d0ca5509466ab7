"""The cost of exactly-once: guarded actions against raw append+fsync writes.

A guarded action is durable because it appends two fsynced records to the
run's journal: an intent before the side effect and a commit after it. So the
floor for N actions is 2N appends with fsync. This measures, in one run and on
the same disk, a real `agentops` run of an agent doing N trivial ctx.action
calls (state load and save, journal, ledger, logging included) against 2N raw
`os.write` + `os.fsync` appends, alternating the two, and prints the ratio.

    python bench/actions.py [--actions 10000] [--rounds 3] [--target 1.5]

Exits 1 if the median ratio passes the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentops.project import Project
from agentops.runner import run_agent

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    actions: int

class Result(BaseModel):
    done: int

def run(params: Params, ctx: Context) -> Result:
    for i in range(params.actions):
        ctx.action("touch", key=f"{ctx.run_id}-{i}", do=lambda: None)
    return Result(done=params.actions)
"""


def raw_appends(path: Path, count: int) -> float:
    record = b'{"op":"intent","run_id":"20261122T031000Z-3fa2c1","action":"touch","key":"k"}\n'
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for _ in range(count):
            os.write(fd, record)
            os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def guarded_run(project: Project, count: int) -> float:
    started = time.perf_counter()
    outcome = run_agent(project, "touch", overrides={"actions": count}, environ={})
    elapsed = time.perf_counter() - started
    if outcome.exit_code != 0:
        sys.exit(f"the benchmark agent failed: {outcome.message}")
    # The next round starts from an empty ledger, like this one did.
    (project.state_dir / "touch.json").unlink()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        home = Path(tmp)
        (home / "agents" / "touch").mkdir(parents=True)
        (home / "agents" / "touch" / "agent.toml").write_text('timeout = "1h"\n')
        (home / "agents" / "touch" / "agent.py").write_text(AGENT)
        (home / "state").mkdir()
        project = Project.locate(home)
        raw_s, guarded_s = [], []
        for _ in range(args.rounds):
            raw_s.append(raw_appends(home / "state" / "raw.journal", 2 * args.actions))
            guarded_s.append(guarded_run(project, args.actions))

    raw, guarded = statistics.median(raw_s), statistics.median(guarded_s)
    pair_us, action_us = raw / args.actions * 1e6, guarded / args.actions * 1e6
    print(f"{2 * args.actions:,} raw append+fsync      {raw:7.2f} s  ({pair_us:.0f} us a pair)")
    print(f"{args.actions:,} guarded actions (a run) {guarded:7.2f} s  ({action_us:.0f} us each)")
    ratio = guarded / raw
    verdict = "within" if ratio <= args.target else "OVER"
    print(f"\nguarded / raw = {ratio:.2f}x ({verdict} the {args.target}x target)")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
