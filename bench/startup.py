"""Start-up cost of `agentops run` on a minimal agent, against importing that agent.

Cron pays start-up on every tick. The irreducible part of a run is Python
importing the agent's module (mostly pydantic's import), so the baseline is
`python -c "import runpy; runpy.run_path('agent.py')"`, measured in the same
run, alternating with `agentops run` so machine noise hits both alike.

    python bench/startup.py [--runs 30] [--target 1.4] [--quick]

Prints the median wall times and their ratio; exits 1 if it passes the target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _bench import Row, agentops_executable, alternate, ratio_row, report, wall_s, write_agent

TARGET = 1.4

AGENT = """\
from pydantic import BaseModel

from agentops import Context


class Params(BaseModel):
    name: str = "world"


class Result(BaseModel):
    greeting: str


def run(params: Params, ctx: Context) -> Result:
    return Result(greeting=f"Hello, {params.name}!")
"""


def rows(*, quick: bool = False, runs: int | None = None, target: float = TARGET) -> list[Row]:
    """``agentops run minimal`` against importing its agent.py."""
    runs = runs or (3 if quick else 30)
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        write_agent(home, "minimal", AGENT, 'description = "benchmark"\n')
        agent_py = home / "agents" / "minimal" / "agent.py"
        baseline = [sys.executable, "-c", f"import runpy; runpy.run_path({str(agent_py)!r})"]
        subject = [agentops, "--home", str(home), "run", "minimal"]
        for command in (baseline, subject):  # warm the page cache and the .pyc files
            wall_s(command, cwd=home)
        subject_s, baseline_s = alternate(
            runs, lambda: wall_s(baseline, cwd=home), lambda: wall_s(subject, cwd=home)
        )
    return [
        ratio_row(
            "startup",
            "agentops run (a minimal agent)",
            subject_s,
            "import the agent (runpy)",
            baseline_s,
            target=target,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="measurements of each command (default 30)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest acceptable ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few measurements")
    args = parser.parse_args()
    return report(rows(quick=args.quick, runs=args.runs, target=args.target))


if __name__ == "__main__":
    sys.exit(main())
