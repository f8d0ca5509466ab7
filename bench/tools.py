"""The cost of ctx.llm.run's tool loop over the same loop written by hand.

A model that calls a read-only tool N times, one call a turn, then answers:
N + 1 requests. The server is the test suite's OpenAI-compatible fake
(``tests/fakellm.py``) in a process of its own, answering at once: while the
conversation holds fewer than N tool results it asks for ``lookup`` again,
then it answers. Measured in the same run, alternating round by round:

- the loop: one ``ctx.llm.run(prompt, tools=[lookup])`` in a run, timed
  inside the run (the client made and the connection opened before it):
  every turn reserved and settled against the budget (drawn from a block
  reserved once for several turns, one fsynced journal record, see
  ``agentops.llm._block``), sent through ``ctx.http``, logged; every call
  validated, wrapped as untrusted and logged as ``llm.tool_call``;
- the baseline: the same N + 1 requests, of the same growing conversation,
  made with bare ``httpx.post`` on one client, and ``lookup`` called
  directly with the arguments each reply asked for; target at most 1.5x;
- the same, each request after a reservation-sized append fsynced to the
  same disk: what a durable reservation a turn would cost (the loop made
  one until its turns were held in blocks); target at most 1.5x.

    python bench/tools.py [--calls 20] [--rounds 9] [--target 1.5] [--quick]

Exits 1 if the figure passes its target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

TESTS = Path(__file__).resolve().parent.parent / "tests"

from _bench import Row, forget_runs, interleave, ratio_row, report, write_agent  # noqa: E402
from agentops.project.home import Project  # noqa: E402
from agentops.run.runner import run_agent  # noqa: E402
from llm import RECORD, journal_file  # noqa: E402 - the floor the llm benchmark uses

if TYPE_CHECKING:
    from collections.abc import Iterator

TARGET = 1.5
CALLS = 20

AGENT = '''
import time
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    calls: int

class Result(BaseModel):
    text: str

def lookup(n: int) -> dict:
    """Look a number up: its square."""
    return {"n": n, "square": n * n}

def run(params: Params, ctx: Context) -> Result:
    ctx.llm.complete("warm")  # the client made, the connection open
    started = time.perf_counter()
    done = ctx.llm.run("go", tools=[lookup], max_steps=params.calls + 1)
    ctx.state["loop_s"] = time.perf_counter() - started
    return Result(text=done.text or "")
'''

AGENT_TOML = """
timeout = "1h"

[llm]
model = "fake"
max_tokens = 256

[limits]
cost_usd_per_day = 1000.0
"""

PROJECT_TOML = """
[providers.fake]
base_url = "{url}"

[models.fake]
provider = "fake"
name = "fake-1"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
"""

SERVER = f"""
import json, sys
sys.path.insert(0, {str(TESTS)!r})
from fakellm import FakeLLM, reply

CALLS = int(sys.argv[1])

def turn(seen):
    body = seen.body if isinstance(seen.body, dict) else {{}}
    if "tools" not in body:
        return None
    done = sum(1 for m in body["messages"] if m.get("role") == "tool")
    if done >= CALLS:
        return None
    call = {{"id": f"call_{{done}}", "type": "function",
             "function": {{"name": "lookup", "arguments": json.dumps({{"n": done}})}}}}
    return reply(None, finish_reason="tool_calls", tool_calls=[call])

with FakeLLM(reply("done"), check=turn) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()  # until the benchmark closes it
"""
"""The fake provider in a child process: a tool call a turn until CALLS results, then "done"."""


@contextlib.contextmanager
def fake_provider(calls: int) -> Iterator[str]:
    """The fake server in a child process; its base URL."""
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(calls)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = child.stdin, child.stdout
    if stdin is None or stdout is None:  # pragma: no cover - both were asked for
        raise RuntimeError("the fake provider's pipes are missing")
    try:
        yield stdout.readline().strip()
    finally:
        stdin.close()
        child.wait(timeout=30)


def lookup(n: int) -> dict[str, int]:
    """What the agent's tool does, called directly by the baseline."""
    return {"n": n, "square": n * n}


SPEC = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a number up: its square.",
        "parameters": {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
    },
}


def loop_in_run(project: Project, calls: int) -> float:
    """Seconds of one ``ctx.llm.run`` loop of ``calls`` tool calls, in an in-process run."""
    outcome = run_agent(project, "looper", overrides={"calls": calls}, environ={})
    if outcome.exit_code != 0:
        sys.exit(f"the benchmark agent failed: {outcome.message}")
    state = json.loads((project.state_dir / "looper.json").read_text())
    if state["metrics"]["tool_calls"] != calls:
        sys.exit(f"the loop made {state['metrics']['tool_calls']} tool calls, not {calls}")
    forget_runs(project.state_dir, "looper")
    return float(state["data"]["loop_s"])


def bare_loop(url: str, calls: int, *, journal: int | None = None) -> float:
    """Seconds of the same loop by hand: bare posts, ``lookup`` called directly.

    With ``journal`` (a descriptor), each post follows a reservation-sized
    append fsynced to it.
    """
    with httpx.Client() as client:
        client.post(url + "/chat/completions", json={"model": "fake-1", "messages": []})
        started = time.perf_counter()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        made = 0
        while True:
            body = {"model": "fake-1", "messages": messages, "max_tokens": 256, "tools": [SPEC]}
            if journal is not None:
                os.write(journal, RECORD)
                os.fsync(journal)
            answer = client.post(url + "/chat/completions", json=body).raise_for_status().json()
            message = answer["choices"][0]["message"]
            if not message.get("tool_calls"):
                break
            messages.append(message)
            for call in message["tool_calls"]:
                result = lookup(**json.loads(call["function"]["arguments"]))
                made += 1
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
                )
        elapsed = time.perf_counter() - started
    if made != calls:
        sys.exit(f"the bare loop made {made} tool calls, not {calls}")
    return elapsed


def rows(
    *,
    quick: bool = False,
    calls: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
) -> list[Row]:
    """One ctx.llm.run loop of N tool calls against the same loop by hand."""
    calls = calls or CALLS
    rounds = rounds or (1 if quick else 9)
    with fake_provider(calls) as url, tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        home = Path(tmp)  # the disk agentops would use
        (home / "agentops.toml").write_text(textwrap.dedent(PROJECT_TOML.format(url=url)))
        write_agent(home, "looper", AGENT, AGENT_TOML)
        project = Project.locate(home)
        loop_in_run(project, calls)  # imports and page cache warm
        with journal_file(home) as journal:
            times = interleave(
                rounds,
                {
                    "loop": lambda: loop_in_run(project, calls),
                    "bare": lambda: bare_loop(url, calls),
                    "floor": lambda: bare_loop(url, calls, journal=journal),
                },
            )
    figure = f"ctx.llm.run, {calls} tool calls ({calls + 1} turns)"
    return [
        ratio_row(
            "tools",
            figure,
            times["loop"],
            "bare httpx.post + direct calls",
            times["bare"],
            target=target,
        ),
        ratio_row(
            "tools",
            figure,
            times["loop"],
            "the same + one fsynced append a turn",
            times["floor"],
            target=target,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help=f"tool calls in the loop (default {CALLS})")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 9)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one round")
    args = parser.parse_args()
    return report(rows(quick=args.quick, calls=args.calls, rounds=args.rounds, target=args.target))


if __name__ == "__main__":
    sys.exit(main())
