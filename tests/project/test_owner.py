"""Whose home it is: another user's runs and edits are refused; `[files]` opens it up on purpose.

Issue 19, defect 6: a run as root in a user's home left a state file the
user's runs could not read (74, naming no owner and no fix). Now a run, or a
command that writes, as a user other than the home's owner is refused before
anything is written, with one line naming both users and the fix.
``[files] allow_users`` lets a user in (a root run then hands what it
creates to the home's owner); ``[files] mode = "group"`` makes what agentops
writes group-readable.

These tests run as root (as the suite does in CI) and give the home to
``nobody``; elsewhere they are skipped.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest

from agentops._infra.fs import describe
from suite import AGENTOPS, cron_env, remember

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a home away")

NOBODY = pwd.getpwnam("nobody")


def give_away(home: Path) -> None:
    """Make ``home`` and everything in it nobody's, as a user's own project is theirs."""
    for path in [home, *home.rglob("*")]:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid, follow_symlinks=False)


def owners(home: Path) -> set[int]:
    return {path.lstat().st_uid for path in [home, *home.rglob("*")]}


def test_a_run_as_root_in_another_users_home_is_refused_and_writes_nothing(project, run_agentops):
    """78, one line naming both users and both fixes; no state, no log, no lock."""
    project.add_agent("hello", toml='schedule = "@hourly"\n')
    give_away(project.home)
    before = sorted(p.relative_to(project.home) for p in project.home.rglob("*"))
    result = run_agentops("run", "hello", "--scheduled")
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == (
        f"agentops: {project.home} belongs to nobody, and agentops runs as root: what root "
        "wrote there, nobody's own runs could not change; run it as nobody "
        f"(sudo -u nobody agentops ...), or allow it in {project.home / 'agentops.toml'}: "
        '[files] allow_users = ["root"]\n'
    )
    assert sorted(p.relative_to(project.home) for p in project.home.rglob("*")) == before
    assert owners(project.home) == {NOBODY.pw_uid}


@pytest.mark.parametrize(
    "command",
    [("pause", "hello"), ("resume", "hello"), ("reset", "hello", "--all"), ("init", "other")],
)
def test_commands_that_write_are_refused_too(project, run_agentops, command):
    """pause, resume, reset, init: the same refusal; nothing is made."""
    project.add_agent("hello")
    give_away(project.home)
    result = run_agentops(*command)
    assert result.returncode == 78
    assert "belongs to nobody, and agentops runs as root" in result.stderr
    assert not (project.home / "state").exists()
    assert not (project.home / "agents" / "other").exists()


def test_a_home_root_owns_may_be_run_by_any_user(project, monkeypatch):
    """A container image's home (root's, by COPY) run as the pod's uid, which has no name."""
    from agentops.errors import ConfigError  # noqa: PLC0415
    from agentops.project.config import Files  # noqa: PLC0415
    from agentops.project.owner import check_writer  # noqa: PLC0415

    assert project.home.stat().st_uid == 0
    monkeypatch.setattr(os, "geteuid", lambda: 10001)
    check_writer(project.home, Files())  # no ConfigError
    give_away(project.home)
    with pytest.raises(ConfigError, match="belongs to nobody, and agentops runs as uid 10001") as e:
        check_writer(project.home, Files())
    assert str(e.value).endswith('[files] allow_users = ["10001"]')
    check_writer(project.home, Files(allow_users=["10001"]))  # the hint, followed


def test_reading_needs_no_permission(project, run_agentops):
    """list, status and check only read (not even a __pycache__): root may look into any home."""
    project.add_agent("hello")
    give_away(project.home)
    for command in (("list",), ("status",), ("check",)):
        assert run_agentops(*command).returncode == 0, command
        assert [p for p in project.home.rglob("*") if p.lstat().st_uid == 0] == [], command


def test_an_allowed_root_run_hands_what_it_creates_to_the_homes_owner(project, run_agentops):
    """[files] allow_users = ["root"]: the run goes ahead, and every file it made is nobody's."""
    project.add_agent("hello", toml='schedule = "@hourly"\n')
    (project.home / "agentops.toml").write_text('[files]\nallow_users = ["root"]\n')
    give_away(project.home)
    result = run_agentops("run", "hello", "--scheduled")
    assert result.returncode == 0, result.stderr
    assert project.state("hello")["last_run"]["status"] == "succeeded"
    assert (project.home / "logs" / "hello.jsonl").exists()
    assert [p for p in project.home.rglob("*") if p.lstat().st_uid == 0] == []


def run_under_umask(home: Path, umask: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = f"umask {umask} && exec {AGENTOPS} --home {home} " + " ".join(args)
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        env=cron_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    remember(f"agentops {' '.join(args)} under umask {umask}", result.stdout, result.stderr)
    return result


def modes(home: Path) -> dict[str, int]:
    """The mode of state/, logs/ and everything in them, by path from the home."""
    paths = [
        home / "state",
        home / "logs",
        *(home / "state").rglob("*"),
        *(home / "logs").rglob("*"),
    ]
    return {str(path.relative_to(home)): stat.S_IMODE(path.lstat().st_mode) for path in paths}


def test_files_are_owner_only_unless_the_home_asks_for_group(project):
    """Default 0600/0700 even under umask 0; mode = "group": 0640/0750 even under umask 077."""
    project.add_agent("hello")
    assert run_under_umask(project.home, "000", "run", "hello").returncode == 0
    assert set(modes(project.home).values()) <= {0o600, 0o700}
    assert modes(project.home)["state/hello.json"] == 0o600

    (project.home / "agentops.toml").write_text('[files]\nmode = "group"\n')
    assert run_under_umask(project.home, "077", "run", "hello").returncode == 0
    found = modes(project.home)
    assert found["state"] == found["logs"] == 0o750, "directories made before are opened up"
    assert found["state/hello.json"] == 0o640, "written again: group-readable"
    assert found["logs/hello.jsonl"] == 0o640, "appended to: opened up too"
    assert all(mode & 0o007 == 0 for mode in found.values()), "never world-readable"


def test_permission_denied_names_the_owner_and_the_user(tmp_path):
    """describe(EACCES) on a file of nobody's says whose it is and who agentops runs as."""
    path = tmp_path / "state.json"
    path.write_text("{}")
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    error = OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    assert describe(error) == (
        f"Permission denied (it belongs to nobody, and agentops runs as root: chown root {path} "
        "gives it back)"
    )
    missing = OSError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "x" / "new"))
    assert describe(missing) == "Permission denied"
