"""The benchmarks still run: ``bench/run.py --quick`` prints a row for each of them.

Only that they run and report. Their targets are for people on a known
machine, never for CI on a shared one.
"""

from __future__ import annotations

import os
import subprocess
import sys

from suite import REPO

BENCH = REPO / "bench"


def test_run_quick_prints_a_row_for_every_benchmark(tmp_path):
    """Every script in bench/ shows up in the one table, under the machine it ran on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick"],
        cwd=tmp_path,  # the benchmarks' scratch files go to the current directory
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # only bounds a hang: a busy machine makes the benchmarks slow
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: a figure missed its target
    lines = done.stdout.splitlines()
    assert any(f"Python {sys.version_info.major}.{sys.version_info.minor}" in li for li in lines)
    header = next(li for li in lines if li.startswith("benchmark"))
    assert "baseline" in header
    assert "target" in header
    benchmarks = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")} - {
        "run",
        "soak",
    }
    expected = {"startup", "actions", "spends", "ledger", "journal", "report", "status", "store"}
    assert benchmarks >= expected
    shown = {li.split()[0] for li in lines[lines.index(header) + 1 :] if li.strip()}
    assert shown == benchmarks
    assert list(tmp_path.iterdir()) == []  # scratch files cleaned up
