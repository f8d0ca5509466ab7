"""A cgroup (v2) of its own for one run: every process it starts stays in it, however it detaches.

A process leaves its group with ``setsid()`` and its parent with a double
fork, but not its cgroup: children are born in their parent's, and only a
write to ``cgroup.procs`` moves them. So a run that moves itself into a new
cgroup finds everything it started, at any depth, in ``cgroup.procs``, and
``cgroup.kill`` (Linux 5.14) ends them all at once, with no fork racing it.

The run's cgroup is made under the one this process is in (read from
``/proc/self/cgroup``, on the cgroup2 mount found in ``/proc/self/mountinfo``),
where the process may create one: root may anywhere; a user only in a
subtree systemd delegated to them. Where it cannot, :meth:`RunCgroup.create`
returns None, saying why, and the caller falls back on other means.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["RunCgroup", "own_cgroup"]

_PROC_SELF = Path("/proc/self")


def _unescape(field: str) -> str:
    # mountinfo writes a space as \040, a tab as \011...
    return field.encode().decode("unicode_escape") if "\\" in field else field


def own_cgroup() -> Path | None:
    """The directory of the cgroup (v2) this process is in, None without a cgroup2 mount."""
    try:
        lines = (_PROC_SELF / "cgroup").read_text().splitlines()
        mounts = (_PROC_SELF / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    for mount in mounts:
        fields, _, after = mount.partition(" - ")
        if after.split(" ", 1)[0] != "cgroup2":
            continue
        parts = fields.split()
        root, point = _unescape(parts[3]), _unescape(parts[4])
        if relative == root or relative.startswith(root.rstrip("/") + "/"):
            inside = relative[len(root.rstrip("/")) :].lstrip("/")
            return Path(point) / inside if inside else Path(point)
    return None


class RunCgroup:
    """The cgroup a run moves itself into, and moves out of when it ends."""

    def __init__(self, path: Path, home: Path) -> None:
        """``path`` is the run's cgroup; ``home`` the one the process came from."""
        self.path = path
        self.home = home

    @classmethod
    def create(cls, name: str) -> tuple[RunCgroup | None, str]:
        """A new cgroup ``name`` under this process's own; (None, why not) if it cannot be."""
        home = own_cgroup()
        if home is None:
            return None, "no cgroup v2 is mounted"
        path = home / name
        try:
            path.mkdir(mode=0o755)
        except OSError as exc:
            return None, f"cannot create a cgroup in {home}: {exc.strerror or exc}"
        return cls(path, home), ""

    def enter(self) -> str | None:
        """Move this process (every thread) in; why it could not be, if it could not."""
        try:
            self._write(self.path / "cgroup.procs", str(os.getpid()))
        except OSError as exc:
            return f"cannot move into {self.path}: {exc.strerror or exc}"
        return None

    def leave(self, pid: int | None = None) -> None:
        """Move this process (or ``pid``) back where it came from: what it started stays in."""
        with contextlib.suppress(OSError):  # the cgroup it came from is gone: stay
            self._write(self.home / "cgroup.procs", str(pid or os.getpid()))

    def pids(self) -> list[int]:
        """The processes in the cgroup now, and in those under it (a nested run's)."""
        found = []
        for directory in self._tree():
            try:
                text = (directory / "cgroup.procs").read_text()
            except OSError:
                continue
            found += [int(line) for line in text.split()]
        return found

    def _tree(self) -> list[Path]:
        # Deepest last: removed in reverse.
        tree = [self.path]
        for directory in tree:
            with contextlib.suppress(OSError), os.scandir(directory) as entries:
                tree += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        return tree

    def kill(self) -> None:
        """SIGKILL everything in it: ``cgroup.kill`` where the kernel has it, one by one else."""
        try:
            self._write(self.path / "cgroup.kill", "1")
        except OSError:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the (empty) cgroup and those under it; False if something is still in one."""
        for directory in reversed(self._tree()):
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                return False
        return True

    def siblings(self, prefix: str) -> list[RunCgroup]:
        """Cgroups beside this one whose names start with ``prefix`` (left by earlier runs)."""
        try:
            names = sorted(entry.name for entry in self.path.parent.iterdir())
        except OSError:
            return []
        return [
            RunCgroup(self.path.parent / name, self.home)
            for name in names
            if name.startswith(prefix) and name != self.path.name
        ]

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
