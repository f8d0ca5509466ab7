"""`agentops report` over 100,000 log lines: target under 2 s; over 1 GB: 60 s and 300 MB.

A week of logs of five agents (100,000 lines in all, a fifth of them in
rotated files): runs that succeed, fail, retry, are skipped, spend, act and
are held for review, amid the HTTP lines that make up most of a real log.
Measured: the real ``agentops report --since 7d --json`` (a subprocess, start-up
included) and the same with ``--html``, against reading and ``json.loads``-ing
every line of the same files (the floor any report pays), alternating, and
the median kept.

Then one agent's log of 1 GB (a week of runs, as ``bench/logs.py`` writes
it), all of it in the period: ``agentops report --html`` on it, its time
(target under 60 s) and its peak memory (the child's maximum resident set,
target under 300 MB), against the same report on a 1 MB log for scale.

    python bench/report.py [--lines 100000] [--rounds 5] [--target-s 2] [--huge-mb 1024] [--quick]

Prints the median wall times and the target; exits 1 if one passes it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bench import (
    Row,
    agentops_executable,
    interleave,
    memory_row,
    peak_run,
    report,
    time_row,
    wall_s,
)
from logs import SMALL, write_log

TARGET_S = 2.0
HUGE_TARGET_S = 60.0
HUGE_TARGET_MB = 300.0
AGENTS = ("collector", "digest", "monitor", "publisher", "writer")
SKIPPED, RETRIED, FAILED, HELD = 0.05, 0.1, 0.08, 0.1
"""The share of runs skipped, retried once, failed, and held for review."""

# As deployed: bytecode is cached. (Some machines set PYTHONDONTWRITEBYTECODE,
# which would make every run compile agentops from source.)


def _line(ts: datetime, level: str, event: str, agent: str, run_id: str, **data: object) -> str:
    stamp = ts.isoformat().replace("+00:00", "Z")
    head = {"ts": stamp, "level": level, "event": event, "agent": agent, "run_id": run_id}
    return json.dumps({**head, **data}, separators=(",", ":"))


def run_lines(agent: str, at: datetime, rng: random.Random) -> list[str]:
    """The lines of one invocation of ``agent`` starting at ``at``."""
    run_id = f"{at:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
    if rng.random() < SKIPPED:
        return [_line(at, "info", "run.skipped", agent, run_id, reason="overlap")]
    lines = [_line(at, "info", "run.started", agent, run_id, params={"feed": "feed.json"})]
    t = at
    for i in range(rng.randint(5, 25)):
        t += timedelta(milliseconds=rng.randint(20, 400))
        lines.append(
            _line(
                t,
                "info",
                "http.request",
                agent,
                run_id,
                method="GET",
                url=f"https://api.example.com/items/{i}?page={i}",
                status=200,
                duration_ms=rng.randint(20, 400),
                bytes=rng.randint(200, 20000),
            )
        )
        if i % 4 == 0:
            lines.append(
                _line(
                    t,
                    "info",
                    "budget.spent",
                    agent,
                    run_id,
                    usd=0.002,
                    tokens=rng.randint(200, 900),
                )
            )
        if i % 5 == 0:
            lines.append(
                _line(
                    t,
                    "info",
                    "action.committed",
                    agent,
                    run_id,
                    action="publish",
                    key=f"{run_id}-{i}",
                )
            )
    if rng.random() < RETRIED:
        lines.append(
            _line(
                t,
                "warning",
                "retry.attempt",
                agent,
                run_id,
                attempt=1,
                category="http_5xx",
                wait_s=1.0,
                error="HTTPStatusError: 503",
            )
        )
    status = "failed" if rng.random() < FAILED else "succeeded"
    if status == "failed":
        lines.append(
            _line(
                t,
                "error",
                "run.failed",
                agent,
                run_id,
                status="failed",
                error=f"{agent}: run() raised OSError: disk full",
            )
        )
    elif rng.random() < HELD:
        lines.append(
            _line(
                t, "info", "review.held", agent, run_id, id=run_id, confidence=0.7, escalated=False
            )
        )
    duration = (t - at).total_seconds()
    lines.append(
        _line(
            t,
            "info",
            "run.finished",
            agent,
            run_id,
            status=status,
            exit_code=0 if status == "succeeded" else 1,
            duration_s=round(duration, 3),
            degraded=False,
            result={"published": 3, "confidence": 0.9},
        )
    )
    return lines


def write_logs(home: Path, total: int, *, now: datetime, seed: int = 7) -> int:
    """Write about ``total`` lines of a week of runs of :data:`AGENTS` under ``home/logs``.

    Each agent's oldest fifth goes to a rotated ``.jsonl.1``. Returns the lines written.
    """
    rng = random.Random(seed)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    per_agent = total // len(AGENTS)
    written = 0
    for agent in AGENTS:
        lines: list[str] = []
        at = now - timedelta(days=7)
        gap = timedelta(days=7) / max(1, per_agent // 30)  # about 30 lines a run
        while len(lines) < per_agent:
            lines += run_lines(agent, at, rng)
            at += gap
        lines = lines[:per_agent]
        cut = len(lines) // 5
        (logs / f"{agent}.jsonl.1").write_text("\n".join(lines[:cut]) + "\n")
        (logs / f"{agent}.jsonl").write_text("\n".join(lines[cut:]) + "\n")
        written += len(lines)
    return written


def parse_all(home: Path) -> float:
    """Seconds to read every log file under ``home/logs`` and json.loads every line."""
    started = time.perf_counter()
    for path in sorted((home / "logs").iterdir()):
        for line in path.read_bytes().splitlines():
            json.loads(line)
    return time.perf_counter() - started


def huge_rows(*, quick: bool = False, size_mb: int | None = None) -> list[Row]:
    """``agentops report --html`` on one huge log: its time and its peak memory."""
    size = (size_mb or (4 if quick else 1024)) << 20
    rounds = 1 if quick else 3
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        (home / "agents").mkdir()
        now = datetime.now(UTC)
        written = write_log(home / "logs" / "huge.jsonl", size, now=now)
        write_log(home / "logs" / "small.jsonl", SMALL, now=now)
        peaks: dict[str, list[float]] = {"huge": [], "small": []}

        def measure(name: str) -> float:
            page = str(home / f"{name}.html")
            command = [agentops, "--home", str(home), "report", name, "--since", "7d"]
            seconds, peak = peak_run([*command, "--json", "--html", page])
            peaks[name].append(peak)
            return seconds

        measure("small")  # warm the .pyc files
        peaks["small"].clear()
        times = interleave(rounds, {name: lambda name=name: measure(name) for name in peaks})
    label = f"{written / (1 << 30):.2f} GB" if written >= 1 << 30 else f"{written >> 20} MB"
    return [
        time_row(
            "report",
            f"agentops report --html, one {label} log",
            times["huge"],
            "the same, 1 MB log",
            times["small"],
            target_s=HUGE_TARGET_S,
        ),
        memory_row(
            "report",
            f"its peak memory, one {label} log",
            peaks["huge"],
            "the same, 1 MB log",
            peaks["small"],
            target_mb=HUGE_TARGET_MB,
        ),
    ]


def rows(
    *,
    quick: bool = False,
    lines: int | None = None,
    rounds: int | None = None,
    target_s: float = TARGET_S,
    huge_mb: int | None = None,
) -> list[Row]:
    """The figures: ``agentops report`` as JSON and as HTML, each against parsing the lines."""
    lines = lines or (10_000 if quick else 100_000)
    rounds = rounds or (1 if quick else 5)
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        (home / "agents").mkdir()
        written = write_logs(home, lines, now=datetime.now(UTC))
        base = [agentops, "--home", str(home), "report", "--since", "7d"]
        commands = {
            "json": [*base, "--json"],
            "html": [*base, "--json", "--html", str(home / "report.html")],
        }
        for command in commands.values():  # warm the page cache and the .pyc files
            wall_s(command)
        times: dict[str, list[float]] = {"parse": [], "json": [], "html": []}
        for index in range(rounds):
            order = ["parse", "json", "html"] if index % 2 == 0 else ["html", "json", "parse"]
            for name in order:
                times[name].append(parse_all(home) if name == "parse" else wall_s(commands[name]))
        size = (home / "report.html").stat().st_size
    parse_s = statistics.median(times["parse"])
    figures = [
        Row(
            bench="report",
            figure=figure,
            seconds=statistics.median(times[kind]),
            baseline="read + json.loads every line",
            baseline_seconds=parse_s,
            unit="s",
            target=target_s,
            samples=tuple(times[kind]),
        )
        for kind, figure in (
            ("json", f"agentops report --json, {written:,} lines"),
            ("html", f"agentops report --html ({size / 1e3:.0f} kB page), {written:,} lines"),
        )
    ]
    return [*figures, *huge_rows(quick=quick, size_mb=huge_mb)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, help="log lines in all (default 100,000)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 5)")
    parser.add_argument("--target-s", type=float, default=TARGET_S, help="the target, seconds")
    parser.add_argument("--huge-mb", type=int, help="the huge log's size (default 1024 MB)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10,000 lines, 1 round")
    args = parser.parse_args()
    return report(
        rows(
            quick=args.quick,
            lines=args.lines,
            rounds=args.rounds,
            target_s=args.target_s,
            huge_mb=args.huge_mb,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
