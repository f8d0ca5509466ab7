"""The cost of ctx.llm: a call's overhead over a bare request, per wire format, and a cache hit.

Each ``ctx.llm.complete`` reserves its worst case in the run's journal,
fsynced before the request leaves (what keeps the money across a power cut:
a request that may be billed is never unrecorded on disk), sends it through
``ctx.http`` (the host check, the request limit, a logged ``http.request``),
settles the reservation to the reply's usage, and logs ``llm.call``. The
servers are the test suite's fakes (``tests/fakellm.py``, OpenAI-compatible,
and ``tests/fakeanthropic.py``, Anthropic's Messages API), answering at once
from a process of their own, as a provider does: what is measured is
agentops' own work. For each wire format, against requests of that format
made in the same run, alternating round by round:

- a call: a run doing N ``ctx.llm.complete`` calls, timed inside the run
  around the loop (the client made and the connection opened by a first
  call before it, as the bare client's first post does), against N bare
  ``httpx.post`` calls on one ``httpx.Client`` (a connection reused, as
  ``ctx.http`` reuses its own); target at most 1.3x;
- the same call against its floor: the bare post plus the one thing a call
  cannot do without, a journal-sized append fsynced to the same disk (the
  reservation); target at most 1.3x. Where an fsync costs more than a
  loopback round trip (a shared disk), the first figure cannot meet its
  target without giving up that durability; this one shows what agentops
  adds beyond it.

And a cache hit: ``[llm] cache`` on and one prompt asked N times after a
first call stored it: no request, no reservation; target under 2 ms a hit.

    python bench/llm.py [--calls 500] [--rounds 9] [--target 1.3] [--target-hit-ms 2] [--quick]

Exits 1 if a figure passes its target.
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
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

TESTS = Path(__file__).resolve().parent.parent / "tests"

from _bench import (  # noqa: E402 - bench/ is on the path when run, as tests/ is not
    Row,
    forget_runs,
    interleave,
    ratio_row,
    report,
    time_row,
    timed,
    write_agent,
)
from agentops.project.home import Project  # noqa: E402
from agentops.run.runner import run_agent  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

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
base_url = "{openai_url}"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"

[models.fake]
provider = "fake"
name = "fake-1"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0

[models.claude]
provider = "claude"
name = "claude-fake"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
"""

AGENT_TOML = """
timeout = "1h"

[llm]
model = "{model}"
max_tokens = 256
{cache}
"""

SERVERS = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakeanthropic import FakeAnthropic
from fakellm import FakeLLM

with FakeLLM() as openai, FakeAnthropic() as anthropic:
    print(openai.base_url, anthropic.base_url, flush=True)
    sys.stdin.read()  # until the benchmark closes it
"""
"""The fake providers, in a process of their own: their threads take no time from the client's."""

FORMATS = {
    "openai": ("fake", "/chat/completions", {}),
    "anthropic": ("claude", "/v1/messages", {"anthropic-version": "2023-06-01"}),
}
"""Each wire format: its model, the path a bare request posts to, the headers it needs."""

RECORD = (
    b'{"kind":"reserve","run_id":"20261122T031000Z-3fa2c1","id":"r-1","usd":0.0003,"tokens":263}\n'
)
"""A journal record the size of a reservation."""


@contextlib.contextmanager
def fake_providers() -> Iterator[tuple[str, str]]:
    """Both fake servers in a child process; their base URLs."""
    child = subprocess.Popen(
        [sys.executable, "-c", SERVERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    stdin, stdout = child.stdin, child.stdout
    if stdin is None or stdout is None:  # pragma: no cover - both were asked for
        raise RuntimeError("the fake providers' pipes are missing")
    try:
        openai_url, anthropic_url = stdout.readline().split()
        yield openai_url, anthropic_url
    finally:
        stdin.close()
        child.wait(timeout=30)


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


def per_bare_post(url: str, wire: str, calls: int, *, journal: int | None = None) -> float:
    """Seconds per ``httpx.post`` of a request of ``wire``'s format, its reply read as JSON.

    With ``journal`` (a descriptor), each post follows a reservation-sized
    append fsynced to it: the floor a call that keeps its money durable has.
    """
    model, path, headers = FORMATS[wire]
    with httpx.Client(headers=headers) as client:

        def post(i: int) -> None:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"question {i}"}],
                "max_tokens": 256,
            }
            if journal is not None:
                os.write(journal, RECORD)
                os.fsync(journal)
            client.post(url + path, json=body).raise_for_status().json()

        post(0)  # the connection open, as the run's first call opens its own
        return timed(lambda: [post(i + 1) for i in range(calls)]) / calls


@contextlib.contextmanager
def journal_file(home: Path) -> Iterator[int]:
    """A file zero-filled ahead on the disk agentops writes to, as its journal is."""
    path = home / "floor.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * (16 << 20))
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)
        path.unlink()


def rows(
    *,
    quick: bool = False,
    calls: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
    target_hit_ms: float = TARGET_HIT_MS,
) -> list[Row]:
    """ctx.llm.complete per call for each wire format, and a cache hit, against bare posts."""
    calls = calls or (20 if quick else 500)
    rounds = rounds or (1 if quick else 9)
    with (
        fake_providers() as (openai_url, anthropic_url),
        tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp,
    ):
        home = Path(tmp)  # the disk agentops would use
        (home / "agentops.toml").write_text(
            textwrap.dedent(PROJECT_TOML.format(openai_url=openai_url, anthropic_url=anthropic_url))
        )
        urls = {"openai": openai_url, "anthropic": anthropic_url.rstrip("/")}
        for wire, (model, _, _) in FORMATS.items():
            write_agent(home, wire, AGENT, AGENT_TOML.format(model=model, cache=""))
        write_agent(home, "cached", AGENT, AGENT_TOML.format(model="fake", cache='cache = "1h"'))
        project = Project.locate(home)
        for wire in FORMATS:
            per_call_in_run(project, wire, 5)  # imports and page cache warm
        per_call_in_run(project, "cached", 5, hits=True)
        with journal_file(home) as journal:
            measures = {}
            for wire in FORMATS:
                measures[f"{wire} bare"] = lambda w=wire: per_bare_post(urls[w], w, calls)
                measures[f"{wire} floor"] = lambda w=wire: per_bare_post(
                    urls[w], w, calls, journal=journal
                )
                measures[f"{wire} call"] = lambda w=wire: per_call_in_run(project, w, calls)
            measures["hit"] = lambda: per_call_in_run(project, "cached", calls, hits=True)
            times = interleave(rounds, measures)
    found = []
    for wire in FORMATS:
        figure = f"ctx.llm.complete, {wire}, per call ({calls:,} in a run)"
        found += [
            ratio_row(
                "llm",
                figure,
                times[f"{wire} call"],
                f"bare httpx.post, {wire}, per call",
                times[f"{wire} bare"],
                target=target,
            ),
            ratio_row(
                "llm",
                figure,
                times[f"{wire} call"],
                "the same post + one fsynced append",
                times[f"{wire} floor"],
                target=target,
            ),
        ]
    found.append(
        time_row(
            "llm",
            f"a cache hit, per call ({calls:,} in a run)",
            times["hit"],
            "bare httpx.post, openai, per call",
            times["openai bare"],
            target_s=target_hit_ms / 1000,
        )
    )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls in each run (default 500)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 9)")
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
