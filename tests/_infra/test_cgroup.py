"""A run's own cgroup: found under this process's, made, listed and removed, or why not.

Without moving the test process anywhere: ``/proc/self/cgroup`` and
``mountinfo`` of our own, written as the kernel writes them (a host, a
container, a mount point with a space), and cgroup directories laid out in
a temporary directory as cgroupfs lays them out. The guarantees with real
cgroups and real processes are in tests/processes/test_run_processes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentops._infra import cgroup
from agentops._infra.cgroup import RunCgroup, own_cgroup

HOST = "36 35 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw"
PROC = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw"


@pytest.fixture
def proc_self(tmp_path, monkeypatch):
    """Write this process's ``cgroup`` and ``mountinfo`` as the test says (None: unreadable)."""
    directory = tmp_path / "self"
    directory.mkdir()
    monkeypatch.setattr(cgroup, "_PROC_SELF", directory)

    def write(cgroups: str, *mounts: str) -> None:
        (directory / "cgroup").write_text(cgroups + "\n")
        (directory / "mountinfo").write_text("".join(f"{m}\n" for m in mounts))

    return write


def test_the_cgroup_is_found_on_the_cgroup2_mount(proc_self):
    """The unified line (0::) under the cgroup2 mount point; other mounts pass by."""
    proc_self("0::/user.slice/user-1000.slice/session-2.scope", PROC, HOST)
    assert own_cgroup() == Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")
    proc_self("0::/", HOST)
    assert own_cgroup() == Path("/sys/fs/cgroup")


def test_in_a_container_the_path_is_taken_from_the_mounts_root(proc_self):
    """A mount of a subtree (root /kubepods/pod1): the part below it, or the point itself."""
    mount = "40 35 0:30 /kubepods/pod1 /sys/fs/cgroup ro,relatime - cgroup2 cgroup2 rw"
    proc_self("0::/kubepods/pod1/job", mount)
    assert own_cgroup() == Path("/sys/fs/cgroup/job")
    proc_self("0::/kubepods/pod1", mount)
    assert own_cgroup() == Path("/sys/fs/cgroup")
    proc_self("0::/kubepods/pod10/job", mount)
    assert own_cgroup() is None, "pod10 is not under pod1"


def test_a_mount_point_with_a_space_is_unescaped(proc_self):
    r"""mountinfo writes a space as \040."""
    proc_self("0::/run", r"36 35 0:30 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw")
    assert own_cgroup() == Path("/mnt/my cgroups/run")


def test_without_cgroup2_there_is_none(proc_self, tmp_path):
    """Only cgroup v1, no cgroup2 mount, or nothing readable: None, and create says why."""
    proc_self("12:cpu,cpuacct:/user.slice", HOST)
    assert own_cgroup() is None
    proc_self("0::/user.slice", PROC)
    assert own_cgroup() is None
    assert RunCgroup.create("agentops-x") == (None, "no cgroup v2 is mounted")
    (tmp_path / "self" / "mountinfo").unlink()
    assert own_cgroup() is None


def test_a_run_cgroup_is_made_beside_others_and_a_taken_name_is_refused(proc_self, tmp_path):
    """Made owner-writable under this process's own; the same name again: why, not an error."""
    home = tmp_path / "cgroupfs" / "session.scope"
    home.mkdir(parents=True)
    proc_self("0::/session.scope", f"36 35 0:30 / {tmp_path / 'cgroupfs'} rw - cgroup2 cgroup2 rw")
    made, why = RunCgroup.create("agentops-pub-1")
    assert made is not None
    assert why == ""
    assert (made.path, made.home) == (home / "agentops-pub-1", home)
    assert made.path.stat().st_mode & 0o777 == 0o755
    again, why = RunCgroup.create("agentops-pub-1")
    assert again is None
    assert why.startswith(f"cannot create a cgroup in {home}: ")
    assert "exists" in why


def test_the_pids_of_a_cgroup_include_those_of_cgroups_under_it(tmp_path):
    """A nested run's cgroup counts; a directory without cgroup.procs is passed by."""
    run = tmp_path / "agentops-pub-1"
    (run / "nested" / "deeper").mkdir(parents=True)
    (run / "empty").mkdir()
    (run / "cgroup.procs").write_text("101\n102\n")
    (run / "nested" / "cgroup.procs").write_text("201\n")
    (run / "nested" / "deeper" / "cgroup.procs").write_text("")
    assert sorted(RunCgroup(run, tmp_path).pids()) == [101, 102, 201]


def test_siblings_are_the_cgroups_an_earlier_run_of_the_agent_left(tmp_path):
    """Named with the agent's prefix, beside this one, itself excluded, in name order."""
    for name in ("agentops-pub-2", "agentops-pub-1", "agentops-pub-9", "agentops-other-1"):
        (tmp_path / name).mkdir()
    this = RunCgroup(tmp_path / "agentops-pub-2", tmp_path)
    found = this.siblings("agentops-pub-")
    assert [sibling.path.name for sibling in found] == ["agentops-pub-1", "agentops-pub-9"]
    assert {sibling.home for sibling in found} == {tmp_path}


def test_remove_takes_the_deepest_first_and_stops_at_one_still_in_use(tmp_path):
    """An empty tree goes whole; one that cannot be removed leaves it, and says so."""
    run = tmp_path / "agentops-pub-1"
    (run / "a" / "b").mkdir(parents=True)
    (run / "c").mkdir()
    assert RunCgroup(run, tmp_path).remove()
    assert not run.exists()
    busy = tmp_path / "agentops-pub-2"
    (busy / "a").mkdir(parents=True)
    (busy / "a" / "cgroup.procs").write_text("301\n")  # cgroupfs: EBUSY; here: not empty
    assert not RunCgroup(busy, tmp_path).remove()
    assert busy.exists()


def test_a_cgroup_that_cannot_be_entered_says_why_and_leaving_a_gone_home_is_quiet(tmp_path):
    """No cgroup.procs to write: the reason; the home gone: the process stays where it is."""
    run = RunCgroup(tmp_path / "gone", tmp_path / "also-gone")
    why = run.enter()
    assert why is not None
    assert why.startswith(f"cannot move into {tmp_path / 'gone'}: ")
    run.leave()  # nothing raised
