"""What every benchmark in bench/ shares: a row of the table, timing, and the table itself.

A benchmark measures a figure against a baseline measured in the same run,
alternating the two round by round (the machine is shared and noisy: drift
and a neighbour's burst then hit both alike), and keeps the median. Each
script exposes ``rows(quick=...)`` returning :class:`Row` objects, for
``bench/run.py``, and runs alone with ``main`` printing its own rows.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ENV",
    "TOUCH_AGENT",
    "Row",
    "agentops_executable",
    "alternate",
    "exit_code",
    "forget_runs",
    "interleave",
    "machine",
    "memory_row",
    "peak_run",
    "print_table",
    "ratio_row",
    "report",
    "time_row",
    "timed",
    "wall_s",
    "write_agent",
]

_K = TypeVar("_K")

# As deployed: bytecode is cached. (Some machines set PYTHONDONTWRITEBYTECODE,
# which would make every run compile agentops from source.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Row:
    """One figure of the table: what was measured, against what, and the target it must meet.

    ``unit`` says what the target bounds: ``"x"`` the ratio to the baseline,
    ``"s"`` the figure's own time in seconds, ``"MB"`` the peak memory of a
    process (``seconds`` and ``baseline_seconds`` then hold megabytes).
    ``samples`` holds that quantity for each round (a paired ratio, a time,
    a peak); its median is what is compared with the target, its spread is
    the noise.
    """

    bench: str
    figure: str
    seconds: float
    baseline: str
    baseline_seconds: float
    unit: Literal["x", "s", "MB"]
    target: float
    samples: tuple[float, ...]

    @property
    def measured(self) -> float:
        """The median of the samples: a ratio, or seconds."""
        return statistics.median(self.samples)

    @property
    def ratio(self) -> float:
        """The figure over its baseline (the median paired ratio for ratio rows)."""
        if self.unit == "x":
            return self.measured
        return self.seconds / self.baseline_seconds if self.baseline_seconds else float("inf")

    @property
    def within(self) -> bool:
        """Whether the figure meets its target."""
        return self.measured <= self.target


def ratio_row(
    bench: str,
    figure: str,
    subject_s: Sequence[float],
    baseline: str,
    baseline_s: Sequence[float],
    *,
    target: float,
) -> Row:
    """A row whose target bounds the ratio; rounds are paired (measured one after the other)."""
    return Row(
        bench,
        figure,
        statistics.median(subject_s),
        baseline,
        statistics.median(baseline_s),
        "x",
        target,
        tuple(s / b for s, b in zip(subject_s, baseline_s, strict=True)),
    )


def time_row(
    bench: str,
    figure: str,
    subject_s: Sequence[float],
    baseline: str,
    baseline_s: Sequence[float],
    *,
    target_s: float,
) -> Row:
    """A row whose target bounds the figure's own time; the baseline is there for scale."""
    return Row(
        bench,
        figure,
        statistics.median(subject_s),
        baseline,
        statistics.median(baseline_s),
        "s",
        target_s,
        tuple(subject_s),
    )


def memory_row(
    bench: str,
    figure: str,
    subject_mb: Sequence[float],
    baseline: str,
    baseline_mb: Sequence[float],
    *,
    target_mb: float,
) -> Row:
    """A row whose target bounds a process's peak memory, in MB; the baseline is for scale."""
    return Row(
        bench,
        figure,
        statistics.median(subject_mb),
        baseline,
        statistics.median(baseline_mb),
        "MB",
        target_mb,
        tuple(subject_mb),
    )


def peak_run(command: list[str], *, expect: int = 0) -> tuple[float, float]:
    """Run ``command`` (output discarded): the seconds it took and its peak memory (RSS, MB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not all children's
        elapsed = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code != expect:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip()
            sys.exit(f"{' '.join(command)} exited {code}, not {expect}: {said}")
    return elapsed, usage.ru_maxrss / 1024  # kilobytes on Linux


def alternate(
    rounds: int, baseline: Callable[[], float], subject: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Measure ``baseline`` and ``subject`` ``rounds`` times each, alternating which goes first.

    Each callable returns the seconds it measured; returns the subject's
    times, then the baseline's.
    """
    times = interleave(rounds, {"baseline": baseline, "subject": subject})
    return times["subject"], times["baseline"]


def interleave(rounds: int, measures: dict[_K, Callable[[], float]]) -> dict[_K, list[float]]:
    """Call each of ``measures`` once a round, for ``rounds`` rounds; their seconds by name.

    The order is reversed every other round (AB, BA, AB...), so a slow drift
    of the machine favours none of them.
    """
    times: dict[_K, list[float]] = {name: [] for name in measures}
    for index in range(rounds):
        order = list(measures) if index % 2 == 0 else list(reversed(measures))
        for name in order:
            times[name].append(measures[name]())
    return times


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def wall_s(
    command: list[str],
    *,
    cwd: Path | None = None,
    expect: int = 0,
    env: Mapping[str, str] | None = None,
) -> float:
    """Seconds a subprocess took, from start to exit; its exit code must be ``expect``.

    It runs in :data:`ENV`, or in ``env`` if given.
    """
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=ENV if env is None else env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        sys.exit(
            f"{' '.join(command)} exited {done.returncode}, not {expect}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return elapsed


def agentops_executable() -> str:
    """The ``agentops`` installed beside this Python."""
    found = shutil.which("agentops", path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit("agentops is not installed beside this Python: pip install -e . first")
    return found


def write_agent(home: Path, name: str, code: str, toml: str = "") -> None:
    """``agents/<name>/agent.py`` and ``agent.toml`` under ``home``."""
    directory = home / "agents" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "agent.py").write_text(textwrap.dedent(code))
    (directory / "agent.toml").write_text(textwrap.dedent(toml))


TOUCH_AGENT = """
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
"""An agent doing ``actions`` guarded actions that do nothing: the guard's own cost."""


def forget_runs(state_dir: Path, name: str) -> None:
    """Remove what runs of ``name`` left in ``state_dir`` (but the lock): the next starts afresh."""
    for leftover in state_dir.glob(f"{name}.*"):
        if leftover.suffix != ".lock":
            leftover.unlink()


def machine() -> str:
    """The CPU model, its cores and the Python: what the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count()
    return (
        f"{cpu}, {cores} core{'s' if cores != 1 else ''}, "
        f"Python {platform.python_version()} ({platform.system()} {platform.release()})"
    )


def _duration(seconds: float) -> str:
    if seconds >= 10:  # noqa: PLR2004 - past ten seconds, milliseconds are noise
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def _megabytes(value: float) -> str:
    return f"{value:,.0f} MB"


def _measured(row: Row, value: float) -> str:
    if row.unit == "MB":
        return _megabytes(value)
    return f"{value:.2f}x" if row.unit == "x" else _duration(value)


COLUMNS = ("benchmark", "figure", "median", "baseline", "median", "result", "range", "target", "")
"""The table's header: each figure, its baseline, the result against the target."""


def print_table(rows: Sequence[Row]) -> None:
    """Print ``rows`` as one table, one line per figure."""
    lines = [COLUMNS]
    for row in rows:
        low, high = min(row.samples), max(row.samples)
        spread = "" if len(row.samples) < 2 else f"{_measured(row, low)}-{_measured(row, high)}"  # noqa: PLR2004
        show = _megabytes if row.unit == "MB" else _duration
        lines.append(
            (
                row.bench,
                row.figure,
                show(row.seconds),
                row.baseline,
                show(row.baseline_seconds),
                _measured(row, row.measured) + ("" if row.unit == "x" else f" ({row.ratio:.1f}x)"),
                spread,
                f"<= {_measured(row, row.target)}",
                "ok" if row.within else "OVER",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    right = {2, 4, 5, 6, 7}  # numbers line up on the right
    for line in lines:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def exit_code(rows: Sequence[Row]) -> int:
    """0 when every figure meets its target, else 1."""
    return 0 if all(row.within for row in rows) else 1


def report(rows: Sequence[Row]) -> int:
    """Print the machine and the table of ``rows``; return the exit code."""
    print(machine())
    print()
    print_table(rows)
    return exit_code(rows)
