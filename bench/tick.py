"""500 trivial agents due in one tick: ``agentops tick`` against one ``agentops run`` each.

The baseline is what a crontab of per-agent lines does at a minute when all
are due: cron starts ``agentops run NAME --scheduled`` for every agent at
once, each a Python of its own paying start-up, and the tick is done when
the last exits. The subject is the one line ``agentops tick``: one warm
parent that forks a child per agent (``[tick] parallel``, default 4). Both
run every agent once on the same home (the file store); what a round left
is removed before the next, and the two alternate.

    python bench/tick.py [--agents 500] [--rounds 1] [--quick]

Targets: the tick in at most 0.25x the baseline's time, and done within 60 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    ENV,
    Row,
    agentops_executable,
    forget_runs,
    interleave,
    ratio_row,
    report,
    time_row,
    wall_s,
    write_agent,
)

TARGET = 0.25
TARGET_S = 60.0

AGENT = """\
from pydantic import BaseModel

from agentops import Context


class Params(BaseModel):
    pass


class Result(BaseModel):
    ok: bool


def run(params: Params, ctx: Context) -> Result:
    return Result(ok=True)
"""


def _cron_env(home: Path) -> dict[str, str]:
    # What cron gives a job, and the bytecode setting of the benchmarks.
    keep = ("PYTHONDONTWRITEBYTECODE",)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "SHELL": "/bin/sh",
        **{k: v for k, v in ENV.items() if k in keep},
    }


def _forget(home: Path, names: list[str]) -> None:
    for name in names:
        forget_runs(home / "state", name)


def per_agent_lines(agentops: str, home: Path, names: list[str]) -> float:
    """Every agent's own ``agentops run --scheduled``, all started at once, as cron does."""
    _forget(home, names)
    env = _cron_env(home)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [agentops, "--home", str(home), "run", name, "--scheduled"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    failed = [p for p in processes if p.wait() != 0]
    elapsed = time.perf_counter() - started
    if failed:
        said = (failed[0].stderr.read() if failed[0].stderr else b"").decode(errors="replace")
        sys.exit(f"{len(failed)} of the agentops run processes failed: {said.strip()}")
    for process in processes:
        if process.stderr:
            process.stderr.close()
    return elapsed


def one_tick(agentops: str, home: Path, names: list[str]) -> float:
    """The one line: ``agentops tick``."""
    _forget(home, names)
    return wall_s([agentops, "--home", str(home), "tick"], env=_cron_env(home))


def rows(*, quick: bool = False, agents: int | None = None, rounds: int | None = None) -> list[Row]:
    """The tick against a process per agent, and the tick's own time."""
    count = agents or (10 if quick else 500)
    rounds = rounds or 1
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        names = [f"agent{n:03d}" for n in range(count)]
        for name in names:
            write_agent(home, name, AGENT, 'schedule = "* * * * *"\n')
        one_tick(agentops, home, names)  # warm the page cache and the .pyc files
        times = interleave(
            rounds,
            {
                "baseline": lambda: per_agent_lines(agentops, home, names),
                "subject": lambda: one_tick(agentops, home, names),
            },
        )
        runs = sum(1 for _ in (home / "state").glob("*.tick"))
        if runs != count:
            sys.exit(f"the last round ran {runs} of {count} agents")
    return [
        ratio_row(
            "tick",
            f"agentops tick, {count} agents due",
            times["subject"],
            f"{count} agentops run processes",
            times["baseline"],
            target=TARGET,
        ),
        time_row(
            "tick",
            f"agentops tick, {count} agents: done within",
            times["subject"],
            f"{count} agentops run processes",
            times["baseline"],
            target_s=TARGET_S,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, help="agents due in the tick (default 500)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 agents")
    args = parser.parse_args()
    return report(rows(quick=args.quick, agents=args.agents, rounds=args.rounds))


if __name__ == "__main__":
    sys.exit(main())
