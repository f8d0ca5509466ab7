"""The cost of ctx.llm: a call's overhead over a bare request, and a cache hit.

Each ``ctx.llm.complete`` reserves its worst case in the run's journal
(fsynced) before the request, sends it through ``ctx.http`` (the host check,
the request limit, a logged ``http.request``), settles the reservation to the
reply's usage, and logs ``llm.call``. Against a fake OpenAI-compatible server
on loopback (``tests/fakellm.py``) that answers at once, what is measured is
agentops' own work. Two figures, each against N bare ``httpx.post`` calls on
one ``httpx.Client`` to the same server (a connection reused, as ``ctx.http``
reuses its own), alternating round by round:

- a call: a run doing N ``ctx.llm.complete`` calls, timed inside the run
  around the loop (the client made and the connection opened by a first
  call before it, as the bare client's first post does); target at most 1.3x;
- a cache hit: the same with ``[llm] cache`` on and one prompt asked N
  times after a first call stored it: no request, no reservation; target
  under 2 ms a hit.

    python bench/llm.py [--calls 500] [--rounds 5] [--target 1.3] [--target-hit-ms 2] [--quick]

Exits 1 if a figure passes its target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _bench import (
    Row,
    forget_runs,
    interleave,
    ratio_row,
    report,
    time_row,
    timed,
    write_agent,
)
from agentops.project.home import Project
from agentops.run.runner import run_agent
from fakellm import FakeLLM  # the tests' fake server, on the path above

TARGET = 1.3
TARGET_HIT_MS = 2.0

AGENT = """
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    calls: int
    same: bool = False

class Result(BaseModel):
    calls: int

def run(params: Params, ctx: Context) -> Result:
    ctx.llm.complete("question 0")  # the client made, the connection open, a reply cached
    started = time.perf_counter()
    for i in range(params.calls):
        ctx.llm.complete("question 0" if params.same else f"question {i + 1}")
    ctx.state["per_call_s"] = (time.perf_counter() - started) / params.calls
    return Result(calls=params.calls)
"""

PROJECT_TOML = """
[providers.fake]
base_url = "{base_url}"

[models.fake]
provider = "fake"
name = "fake-1"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
"""

AGENT_TOML = """
timeout = "1h"

[llm]
model = "fake"
max_tokens = 256
{cache}
"""


def per_call_in_run(project: Project, name: str, calls: int, *, hits: bool = False) -> float:
    """Seconds per call of one in-process run of ``name``; its files are removed after.

    With ``hits`` every timed call must have been a cache hit. Every round then
    starts as the first did: no spends, no cache.
    """
    overrides = {"calls": calls, "same": hits}
    outcome = run_agent(project, name, overrides=overrides, environ={})
    if outcome.exit_code != 0:
        sys.exit(f"the benchmark agent {name} failed: {outcome.message}")
    state = json.loads((project.state_dir / f"{name}.json").read_text())
    if state["metrics"]["llm_cache_hits"] != (calls if hits else 0):
        sys.exit(f"{name}: {state['metrics']['llm_cache_hits']} cache hits in {calls} calls")
    forget_runs(project.state_dir, name)
    return float(state["data"]["per_call_s"])


def per_bare_post(url: str, calls: int) -> float:
    """Seconds per ``httpx.post`` of a chat request on one client, its reply read as JSON."""
    with httpx.Client() as client:

        def post(i: int) -> None:
            body = {
                "model": "fake-1",
                "messages": [{"role": "user", "content": f"question {i}"}],
                "max_tokens": 256,
            }
            client.post(url, json=body).raise_for_status().json()

        post(0)  # the connection open, as the run's first call opens its own
        return timed(lambda: [post(i + 1) for i in range(calls)]) / calls


def rows(
    *,
    quick: bool = False,
    calls: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
    target_hit_ms: float = TARGET_HIT_MS,
) -> list[Row]:
    """ctx.llm.complete per call, and per cache hit, against a bare post per call."""
    calls = calls or (30 if quick else 500)
    rounds = rounds or (1 if quick else 5)
    with FakeLLM() as server, tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        home = Path(tmp)  # the disk agentops would use
        (home / "agentops.toml").write_text(
            textwrap.dedent(PROJECT_TOML.format(base_url=server.base_url))
        )
        write_agent(home, "caller", AGENT, AGENT_TOML.format(cache=""))
        write_agent(home, "cached", AGENT, AGENT_TOML.format(cache='cache = "1h"'))
        project = Project.locate(home)
        per_call_in_run(project, "caller", 5)  # imports and page cache warm
        per_call_in_run(project, "cached", 5, hits=True)
        url = server.base_url + "/chat/completions"
        times = interleave(
            rounds,
            {
                "bare": lambda: per_bare_post(url, calls),
                "call": lambda: per_call_in_run(project, "caller", calls),
                "hit": lambda: per_call_in_run(project, "cached", calls, hits=True),
            },
        )
    return [
        ratio_row(
            "llm",
            f"ctx.llm.complete, per call ({calls:,} in a run)",
            times["call"],
            "bare httpx.post, per call",
            times["bare"],
            target=target,
        ),
        time_row(
            "llm",
            f"a cache hit, per call ({calls:,} in a run)",
            times["hit"],
            "bare httpx.post, per call",
            times["bare"],
            target_s=target_hit_ms / 1000,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls in each run (default 500)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 5)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest call ratio")
    parser.add_argument(
        "--target-hit-ms", type=float, default=TARGET_HIT_MS, help="slowest cache hit, in ms"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls, one round")
    args = parser.parse_args()
    return report(
        rows(
            quick=args.quick,
            calls=args.calls,
            rounds=args.rounds,
            target=args.target,
            target_hit_ms=args.target_hit_ms,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
