"""The kill soak (bench/soak.py) in its short form: 20 real kills (its checks: tests/bench/)."""

from __future__ import annotations

import re
import subprocess
import sys

from suite import REPO, cron_env, remember

SOAK = REPO / "bench" / "soak.py"


def test_a_short_kill_soak_publishes_every_item_exactly_once(tmp_path):
    """20 kills at random moments, some inside do() and undo(): no violation, every item once."""
    result = subprocess.run(
        [
            *(sys.executable, str(SOAK), "--kills", "20", "--items", "8", "--seed", "20261122"),
            *("--home", str(tmp_path / "soak")),
        ],
        env=cron_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    remember("bench/soak.py", result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    (summary,) = result.stdout.splitlines()
    assert summary.startswith("soak: 20 kills in ")
    assert re.search(r"; 0 violations in \d+s$", summary)
    assert re.search(r"\d+ inside do\(\)", summary), "some kills land between intent and commit"
    assert re.search(r"\d+ inside undo\(\)", summary), "and some between undo and undone"
    assert not re.search(r"\b0 recoveries", summary)
