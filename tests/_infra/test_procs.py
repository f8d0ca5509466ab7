"""Processes as ``/proc`` shows them: who a process is, who descends from whom, who holds a lock.

This process's own entries in the real ``/proc``, and a ``/proc`` of our own
(a directory laid out as the kernel lays it out) for what the test process
cannot be: a command whose name holds parentheses, a kernel thread, a tree
of processes. The guarantees with real processes (a grandchild found through
its parents, everything a run leaves running ended) are in
tests/processes/test_run_processes.py.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from agentops._infra import procs
from agentops._infra.procs import ProcessInfo


@pytest.fixture
def fake_proc(tmp_path, monkeypatch) -> Path:
    """An empty ``/proc`` of our own, read instead of the kernel's for the test."""
    root = tmp_path / "proc"
    root.mkdir()
    monkeypatch.setattr(procs, "PROC", root)
    return root


def add_process(proc: Path, pid: int, stat: str, *, cmdline: bytes = b"", comm: str = "") -> None:
    """``/proc/<pid>`` with its ``stat`` line (from the state on), ``cmdline`` and ``comm``."""
    entry = proc / str(pid)
    entry.mkdir()
    name = comm or "x"
    (entry / "stat").write_text(f"{pid} ({name}) {stat} 0 0 0 0 0\n")
    (entry / "cmdline").write_bytes(cmdline)
    (entry / "comm").write_text(name + "\n")


def test_this_process_is_read_from_its_stat():
    """Its parent and process group as os says them; running, so alive."""
    me = procs.read_process(os.getpid())
    assert me == ProcessInfo(os.getpid(), os.getppid(), os.getpgrp(), "R")
    assert procs.alive(os.getpid())
    nobody = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids stay below it
    assert procs.read_process(nobody) is None
    assert not procs.alive(nobody)


def test_a_command_name_with_parentheses_and_spaces_is_read_past(fake_proc):
    """The state and parents follow the last ')': a name cannot shift the fields."""
    add_process(fake_proc, 40, "S 7 40", comm="a) (b c) Z 1 1")
    add_process(fake_proc, 41, "Z 40 40")
    (fake_proc / "42").mkdir()
    (fake_proc / "42" / "stat").write_text("42 (junk)\n")
    assert procs.read_process(40) == ProcessInfo(40, 7, 40, "S")
    assert procs.alive(40)
    assert not procs.alive(41), "a zombie has ended"
    assert procs.read_process(42) is None, "a line cut short says nothing"
    assert sorted(procs.snapshot()) == [ProcessInfo(40, 7, 40, "S"), ProcessInfo(41, 40, 40, "Z")]


def test_descendants_are_found_through_their_parents_nearest_first():
    """Children, then grandchildren; not the root, not a stranger; a loop ends."""
    processes = [
        ProcessInfo(10, 1, 10, "S"),
        ProcessInfo(20, 10, 10, "S"),
        ProcessInfo(21, 10, 10, "S"),
        ProcessInfo(30, 20, 30, "S"),  # left its group: still a descendant
        ProcessInfo(40, 1, 40, "S"),
        ProcessInfo(50, 60, 50, "S"),
        ProcessInfo(60, 50, 50, "S"),  # each the other's parent: found once
    ]
    assert procs.descendants(10, processes) == [20, 21, 30]
    assert procs.descendants(30, processes) == []
    assert procs.descendants(50, processes) == [60]


def test_a_command_is_its_arguments_or_for_a_kernel_thread_its_name(fake_proc):
    """NULs become spaces; no command line: [name]; a long one cut; an unknown pid: ?."""
    add_process(fake_proc, 5, "S 1 5", cmdline=b"python3\0-c\0print('hi there')\0")
    add_process(fake_proc, 6, "S 2 0", comm="kworker/0:1")
    add_process(fake_proc, 7, "S 1 7", cmdline=b"x" * 5000)
    assert procs.command_of(5) == "python3 -c print('hi there')"
    assert procs.command_of(6) == "[kworker/0:1]"
    assert procs.command_of(7) == "x" * 300
    assert procs.command_of(8) == "?"


def test_without_proc_every_question_finds_nothing(tmp_path, monkeypatch):
    """A system without /proc: no process, no descendant, no command, no lock holder known."""
    monkeypatch.setattr(procs, "PROC", tmp_path / "nowhere")
    lock = tmp_path / "x.lock"
    lock.write_text("")
    assert procs.snapshot() == []
    assert procs.descendants(os.getpid()) == []
    assert procs.command_of(os.getpid()) == "?"
    assert procs.flock_holders(lock) is None
    assert procs.holding_open(lock) == []


def test_the_kernel_names_who_holds_a_lock(tmp_path):
    """/proc/locks names the locker."""
    lock = tmp_path / "x.lock"
    lock.write_text("")
    fd = os.open(lock, os.O_RDWR)
    try:
        assert procs.flock_holders(lock) == []
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert procs.flock_holders(lock) == [os.getpid()]
        assert os.getpid() in procs.holding_open(lock)
    finally:
        os.close(fd)


def test_a_watch_hears_the_word_said_on_its_pipe():
    """One byte a word; an unknown byte is taken as a death; past its deadline: deadline."""
    read, write = os.pipe()
    watch = procs.Watch(os.getpid(), read, words={b"d": "done"})
    try:
        os.write(write, b"d?")
        assert watch.wait(None) == "done"
        assert watch.wait(None) == "died"
        assert watch.wait(time.monotonic() - 1) == "deadline"
    finally:
        watch.close()
        os.close(read)
        os.close(write)
