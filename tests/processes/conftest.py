"""Fixtures of the tests that need real daemons (Debian's cron), or a cgroup of their own.

A test that needs the cron daemon holds the machine's cron for itself
(:func:`conftest.machine_cron`, a lock: the suite runs on several workers).
A cron that is alive already (the machine's own) is used as it is;
otherwise the test starts ``cron -f`` as its own child, so it is reaped
when stopped: a daemonized cron killed by a test would linger as a zombie
that ``pgrep`` still counts as running, and the next test would wait for
ticks from a dead daemon.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agentops._infra.cgroup import RunCgroup
from suite import eventually
from system import ensure_tool, give_up

if TYPE_CHECKING:
    from collections.abc import Iterator

_PID_FILE = Path("/var/run/crond.pid")


def live_cron_pids() -> list[int]:
    """The pids of cron daemons that are alive: zombies and stopped processes do not count."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        state = text[text.rindex(")") + 2]
        if name == "cron" and state not in "ZTtXx":
            pids.append(int(stat.parent.name))
    return pids


@pytest.fixture
def cron_daemon(machine_cron: None) -> Iterator[None]:
    """A running cron daemon for the test: the machine's, or ours (``cron -f``) stopped after."""
    del machine_cron
    cron = ensure_tool("cron", package="cron")
    if live_cron_pids():
        yield
        return
    daemon = subprocess.Popen(
        [cron, "-f"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # Ready once it holds its pid file: it has read the crontabs and waits for the minute.
        started = eventually(
            lambda: daemon.poll() is not None or _pid_file_names(daemon.pid), within_s=60
        )
        if not started or daemon.poll() is not None:
            give_up(f"cron -f did not start: {daemon.stderr.read() if daemon.stderr else ''}")
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@pytest.fixture(scope="module")
def cgroups() -> None:
    """Skip (fail under CI) where this test process may not create a cgroup."""
    probe, why = RunCgroup.create(f"agentops-probe-{uuid.uuid4().hex[:8]}")
    if probe is None:
        give_up(f"no cgroup for the run: {why}")
    probe.remove()


def _pid_file_names(pid: int) -> bool:
    try:
        return _PID_FILE.read_text().split()[0] == str(pid)
    except (OSError, IndexError):
        return False
