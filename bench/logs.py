"""`agentops logs AGENT -n 5` on a 1 GB log costs what it costs on a 1 MB one.

Reading the end of a log reads the end of the log: the real ``agentops logs
big -n 5`` (a subprocess, start-up included) on a log of 1 GB of a week of
runs, against the same command on a 1 MB log, alternating, the median
paired ratio kept (target: at most 1.5x). Its peak memory (the child's
maximum resident set) has a target too: under 100 MB, whatever the size.

    python bench/logs.py [--size-mb 1024] [--rounds 5] [--quick]

Prints the figures and the targets; exits 1 if one misses.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bench import Row, agentops_executable, interleave, memory_row, peak_run, ratio_row, report

RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 100.0
SMALL = 1 << 20

_HTTP = (
    '{{"ts":"{ts}","level":"info","event":"http.request","agent":"{agent}","run_id":"{run}",'
    '"method":"GET","url":"https://api.example.com/items/{i}?page={i}","status":200,'
    '"duration_ms":{ms},"bytes":{size}}}\n'
)
_SPENT = (
    '{{"ts":"{ts}","level":"info","event":"budget.spent","agent":"{agent}","run_id":"{run}",'
    '"usd":0.002,"tokens":{tokens}}}\n'
)
_ACTION = (
    '{{"ts":"{ts}","level":"info","event":"action.committed","agent":"{agent}",'
    '"run_id":"{run}","action":"publish","key":"{run}-{i}"}}\n'
)
_STARTED = (
    '{{"ts":"{ts}","level":"info","event":"run.started","agent":"{agent}","run_id":"{run}",'
    '"params":{{"feed":"feed.json"}}}}\n'
)
_FINISHED = (
    '{{"ts":"{ts}","level":"info","event":"run.finished","agent":"{agent}","run_id":"{run}",'
    '"status":"{status}","exit_code":{code},"duration_s":{duration},"degraded":false,'
    '"result":{{"published":3,"confidence":0.9}}}}\n'
)
_RUN_BYTES = 4700
"""About what one run below writes: to space runs so that the log spans its days."""


def _run(agent: str, at: datetime, rng: random.Random) -> str:
    """The lines of one run of ``agent`` at ``at``: mostly HTTP calls, as real logs are."""
    ts = at.isoformat().replace("+00:00", "Z")
    run = f"{at:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
    parts = [_STARTED.format(ts=ts, agent=agent, run=run)]
    for i in range(14):
        parts.append(
            _HTTP.format(
                ts=ts,
                agent=agent,
                run=run,
                i=i,
                ms=rng.randint(20, 400),
                size=rng.randint(200, 20000),
            )
        )
        if i % 4 == 0:
            parts.append(_SPENT.format(ts=ts, agent=agent, run=run, tokens=rng.randint(200, 900)))
        if i % 5 == 0:
            parts.append(_ACTION.format(ts=ts, agent=agent, run=run, i=i))
    failed = rng.random() < 0.08  # noqa: PLR2004 - a failure in twelve runs
    parts.append(
        _FINISHED.format(
            ts=ts,
            agent=agent,
            run=run,
            status="failed" if failed else "succeeded",
            code=1 if failed else 0,
            duration=round(rng.uniform(0.5, 30), 3),
        )
    )
    return "".join(parts)


def write_log(path: Path, size: int, *, now: datetime, days: float = 7, seed: int = 7) -> int:
    """Write about ``size`` bytes of an agent's runs over the ``days`` before ``now``; the bytes."""
    rng = random.Random(seed)
    runs = max(1, size // _RUN_BYTES)
    gap = timedelta(days=days) / runs
    at = now - timedelta(days=days)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as file:
        while written < size:
            block = "".join(_run(path.stem, at + gap * i, rng) for i in range(200))
            at += gap * 200
            file.write(block)
            written += len(block)
    return written


def rows(
    *, quick: bool = False, size_mb: int | None = None, rounds: int | None = None
) -> list[Row]:
    """``logs -n 5`` on a big log against a 1 MB one: the ratio, and the big one's peak memory."""
    size = (size_mb or (4 if quick else 1024)) << 20
    rounds = rounds or (1 if quick else 5)
    agentops = agentops_executable()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk agentops would use
        home = Path(tmp)
        (home / "agents").mkdir()
        now = datetime.now(UTC)
        big = write_log(home / "logs" / "big.jsonl", size, now=now)
        write_log(home / "logs" / "small.jsonl", SMALL, now=now)
        commands = {
            name: [agentops, "--home", str(home), "logs", name, "-n", "5"]
            for name in ("big", "small")
        }
        peaks: dict[str, list[float]] = {"big": [], "small": []}

        def measure(name: str) -> float:
            seconds, peak = peak_run(commands[name])
            peaks[name].append(peak)
            return seconds

        for name in commands:  # warm the page cache and the .pyc files
            measure(name)
            peaks[name].clear()
        times = interleave(rounds, {name: lambda name=name: measure(name) for name in commands})
    label = f"{big / (1 << 30):.2f} GB" if big >= 1 << 30 else f"{big >> 20} MB"
    return [
        ratio_row(
            "logs",
            f"agentops logs AGENT -n 5, {label} log",
            times["big"],
            "the same, 1 MB log",
            times["small"],
            target=RATIO_TARGET,
        ),
        memory_row(
            "logs",
            f"its peak memory, {label} log",
            peaks["big"],
            "the same, 1 MB log",
            peaks["small"],
            target_mb=MEMORY_TARGET_MB,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, help="the big log's size (default 1024 MB)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 MB, 1 round")
    args = parser.parse_args()
    return report(rows(quick=args.quick, size_mb=args.size_mb, rounds=args.rounds))


if __name__ == "__main__":
    sys.exit(main())
