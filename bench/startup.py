"""Start-up cost of `agentops run` on a minimal agent, against importing that agent.

Cron pays start-up on every tick. The irreducible part of a run is Python
importing the agent's module (mostly pydantic's import), so the baseline is
`python -c "import runpy; runpy.run_path('agent.py')"`, measured in the same
run, interleaved with the other commands so machine noise hits all alike.

    python bench/startup.py [--runs 30] [--target 1.7]

Prints median wall times and the ratios; exits 1 if the ratio passes the target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# As deployed: bytecode is cached. (Some machines set PYTHONDONTWRITEBYTECODE,
# which would make every run compile agentops from source.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_s(command: list[str], *, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measurements per command")
    parser.add_argument("--target", type=float, default=1.7, help="highest acceptable ratio")
    args = parser.parse_args()

    agentops = shutil.which("agentops", path=str(Path(sys.executable).parent))
    if agentops is None:
        sys.exit("agentops is not installed beside this Python: pip install -e . first")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        agent_dir = home / "agents" / "minimal"
        agent_dir.mkdir(parents=True)
        (agent_dir / "agent.toml").write_text('description = "benchmark"\n')
        (agent_dir / "agent.py").write_text(AGENT)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import the agent (baseline)": [
                sys.executable,
                "-c",
                f"import runpy; runpy.run_path({str(agent_dir / 'agent.py')!r})",
            ],
            "agentops run minimal": [agentops, "--home", str(home), "run", "minimal"],
        }
        for command in commands.values():  # warm the page cache and .pyc files
            wall_s(command, cwd=home)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(wall_s(command, cwd=home))

    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians["import the agent (baseline)"]
    bare = medians["python -c pass"]
    print(f"{'command':32} {'median ms':>10} {'x baseline':>11} {'x python':>9}")
    for name, value in medians.items():
        print(f"{name:32} {value * 1000:10.1f} {value / baseline:11.2f} {value / bare:9.1f}")
    ratio = medians["agentops run minimal"] / baseline
    verdict = "within" if ratio <= args.target else "OVER"
    print(f"\nagentops run / baseline = {ratio:.2f}x ({verdict} the {args.target}x target)")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
