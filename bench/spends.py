"""The cost of budgets: ctx.spend calls against raw append+fsync writes.

A spend is journaled (one record, fsynced) before ``ctx.spend`` returns, and
checked against every cap first: ``tokens_per_run``, and the dollars of the
last hour and the last day, windows over every spend of the run so far. So
the floor for N spends is N appends with fsync, and the checks must not grow
with the spends already made. This measures, in one run and on the same
disk, a real run of an agent calling ctx.spend N times under all three caps
(high enough never to refuse) against N raw `os.write` + `os.fsync`
appends, alternating the two, and prints the median ratio.

    python bench/spends.py [--spends 10000] [--rounds 5] [--target 2.0] [--quick]

Exits 1 if the median ratio passes the target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _bench import Row, alternate, ratio_row, report, write_agent
from actions import agent_run, raw_appends
from agentops.project.home import Project

TARGET = 2.0

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    spends: int

class Result(BaseModel):
    spent: int

def run(params: Params, ctx: Context) -> Result:
    for _ in range(params.spends):
        ctx.spend(usd=0.0001, tokens=3)
    return Result(spent=params.spends)
"""

# Every cap is checked on every spend; none is ever reached.
TOML = """
timeout = "1h"

[limits]
cost_usd_per_hour = 1000000.0
cost_usd_per_day = 1000000.0
tokens_per_run = 1000000000
"""


def rows(
    *,
    quick: bool = False,
    spends: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
) -> list[Row]:
    """A run of N ctx.spend calls against N raw append+fsync writes."""
    spends = spends or (300 if quick else 10_000)
    rounds = rounds or (1 if quick else 5)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        write_agent(home, "spender", AGENT, TOML)
        (home / "state").mkdir()
        project = Project.locate(home)
        agent_run(project, "spender", {"spends": 10})  # imports and page cache warm
        subject_s, baseline_s = alternate(
            rounds,
            lambda: raw_appends(home / "state" / "raw.journal", spends),
            lambda: agent_run(project, "spender", {"spends": spends}),
        )
    return [
        ratio_row(
            "spends",
            f"{spends:,} ctx.spend calls (a run)",
            subject_s,
            f"{spends:,} raw append+fsync",
            baseline_s,
            target=target,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, help="ctx.spend calls in the run (default 10,000)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 5)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest acceptable ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few spends, one round")
    args = parser.parse_args()
    return report(
        rows(quick=args.quick, spends=args.spends, rounds=args.rounds, target=args.target)
    )


if __name__ == "__main__":
    sys.exit(main())
