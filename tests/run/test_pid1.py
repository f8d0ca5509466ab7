"""PID 1 of a container: only ``run`` and ``tick`` supervised, and a failed run's marker kept.

In process, what the supervisor decides without being PID 1: that nothing
happens when it is not, which commands and home it finds in the arguments,
and what it says after a failed run whose deadline marker the store could
not keep. Being PID 1 (forwarding stops, reaping orphans, the exit code)
needs a PID namespace of its own: tests/processes/test_deadline_markers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agentops.run import pid1
from agentops.store import STORE_URL_ENV


def test_anywhere_but_pid_1_nothing_is_forked():
    """The caller returns at once, in the same process, whatever the command."""
    before = os.getpid()
    for argv in (["run", "pub"], ["tick"], ["--home", "/srv", "run", "pub"]):
        assert pid1.supervise_as_init(argv, {}) is None
        assert os.getpid() == before


@pytest.mark.parametrize(
    ("argv", "environ", "found"),
    [
        (["run", "pub"], {}, (None, "run")),
        (["--home", "/srv/a", "run", "pub"], {"AGENTOPS_HOME": "/env"}, ("/srv/a", "run")),
        (["--home=/srv/a", "tick"], {}, ("/srv/a", "tick")),
        (["tick", "--home", "/x"], {"AGENTOPS_HOME": "/env"}, ("/env", "tick")),
        (["status"], {"AGENTOPS_HOME": ""}, (None, "status")),
        ([], {}, (None, "")),
    ],
)
def test_the_home_and_the_command_are_read_as_the_root_group_reads_them(argv, environ, found):
    """--home before the command (either spelling) wins over $AGENTOPS_HOME; empty is none."""
    assert pid1._home_and_command(argv, environ) == found


def leave_ended_marker(home, name: str, run_id: str) -> None:
    state = home / "state"
    state.mkdir(exist_ok=True)
    first = {"run_id": run_id, "started_at": "2026-11-22T10:00:00+00:00", "kind": "run"}
    (state / f"{name}.deadline").write_text(json.dumps(first) + "\nthe stack\n")


def test_a_marker_the_store_cannot_keep_is_said_on_stderr_and_kept(project, capsys):
    """One line per run, as cron's, beginning agentops:; the local marker stays for this host."""
    leave_ended_marker(project.home, "pub", "run-1")
    pid1._publish(str(project.home), {STORE_URL_ENV: "nosuch://db"})
    said = capsys.readouterr()
    assert said.out == ""
    [line] = said.err.splitlines()
    assert line.startswith("agentops: pub: run run-1 was ended by its deadline, but the store ")
    assert (project.home / "state" / "pub.deadline").exists()


def test_without_a_project_or_a_failure_nothing_is_said(project, tmp_path, capsys):
    """No agents/ there: the run already said so; the file store: the marker is the file."""
    pid1._publish(str(tmp_path / "nowhere"), {})
    leave_ended_marker(project.home, "pub", "run-1")
    pid1._publish(str(project.home), {})
    assert capsys.readouterr() == ("", "")
    assert (project.home / "state" / "pub.deadline").exists()


def test_nothing_is_imported_before_the_supervisor_blocks_a_stop():
    """The kernel drops a SIGTERM PID 1 has not blocked: the time before is Python's own start.

    What the executable imports on its way to the block: not ``typing``
    (a third of the time agentops took there before), nor any other module
    of agentops.
    """
    script = (
        "import sys; before = set(sys.modules); "
        "from agentops.cli import main; from agentops.run.pid1 import supervise_as_init; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = [name for name in loaded if name.partition(".")[0] == "agentops"]
    assert ours == ["agentops", "agentops.cli", "agentops.run", "agentops.run.pid1"]
    assert "typing" not in loaded
