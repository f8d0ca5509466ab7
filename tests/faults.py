"""A file system whose steps fail on demand: the fault injector of the fault-injection tests.

``FaultyFileSystem(step="fsync", nth=2, where="*/pub.journal", error=errno.EIO)``
makes the second fsync of the journal fail with EIO, and counts every call.

``where`` is matched (``fnmatch``) against the *subject* of each call: inside
:meth:`~agentops._infra.fs.FileSystem.replace` and
:meth:`~agentops._infra.fs.FileSystem.create` that is the file being
replaced or opened, so ``where="*/pub.json"`` reaches the temporary file,
the ``.bak`` link and the directory fsync of saving the state; elsewhere it
is the path the step acts on, or the path an ``fd`` was opened at.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from agentops._infra.fs import FILE_MODE, FileSystem

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["STEPS", "FaultyFileSystem"]

STEPS = (
    "open",
    "write",
    "zero_fill",
    "fsync",
    "close",
    "rename",
    "link",
    "unlink",
    "fsync_dir",
    "mkdir",
)
"""Every step of the seam, in the order of FileSystem's methods."""


class FaultyFileSystem(FileSystem):
    """Fails the ``nth`` call of ``step`` whose subject matches ``where``, with ``error``.

    Without a ``step`` nothing fails: it only records ``trace``, the
    ``(step, subject)`` of every call, and ``calls``, how many of each step.
    Without ``power_cuts`` the fsyncs are counted (and may fail) but not made:
    tests that never cut the power need not wait for the disk.
    """

    def __init__(
        self,
        step: str | None = None,
        *,
        error: int = errno.EIO,
        nth: int = 1,
        where: str = "*",
        power_cuts: bool = True,
    ) -> None:
        if step is not None and step not in STEPS:
            raise ValueError(f"no step {step!r}: one of {', '.join(STEPS)}")
        self.step = step
        self.error = error
        self.nth = nth
        self.where = where
        self.power_cuts = power_cuts
        self.calls: Counter[str] = Counter()
        self.trace: list[tuple[str, str]] = []
        self.matched = 0
        """Calls of ``step`` whose subject matched ``where``, so far."""
        self.failed: tuple[str, str] | None = None
        """The ``(step, subject)`` the fault was injected at, once it was."""
        self.open_fds: dict[int, str] = {}
        """The descriptors it opened and has not closed yet, with their subjects."""
        self._subject: str | None = None

    # -- the bookkeeping ----------------------------------------------------------------

    def _call(self, step: str, path: Path | str) -> None:
        """Count a call; raise the fault if this is the one."""
        subject = self._subject or str(path)
        self.calls[step] += 1
        self.trace.append((step, subject))
        if step != self.step or not fnmatch.fnmatchcase(subject, self.where):
            return
        self.matched += 1
        if self.matched == self.nth:
            self.failed = (step, subject)
            raise OSError(self.error, os.strerror(self.error), str(path))

    @contextlib.contextmanager
    def _about(self, path: Path) -> Iterator[None]:
        """Attribute the steps of a composed operation to the file it is for."""
        outer, self._subject = self._subject, self._subject or str(path)
        try:
            yield
        finally:
            self._subject = outer

    # -- the steps, each one a possible fault -------------------------------------------

    def open(self, path: Path, flags: int, mode: int = FILE_MODE) -> int:
        self._call("open", path)
        fd = super().open(path, flags, mode)
        self.open_fds[fd] = self._subject or str(path)
        return fd

    def write(self, fd: int, data: bytes) -> None:
        self._call("write", self.open_fds.get(fd, f"fd {fd}"))
        super().write(fd, data)

    def zero_fill(self, fd: int, start: int, length: int) -> None:
        self._call("zero_fill", self.open_fds.get(fd, f"fd {fd}"))
        super().zero_fill(fd, start, length)

    def fsync(self, fd: int) -> None:
        self._call("fsync", self.open_fds.get(fd, f"fd {fd}"))
        if self.power_cuts:
            super().fsync(fd)

    def close(self, fd: int) -> None:
        # The descriptor is closed even when the close "fails", as close(2) does.
        subject = self.open_fds.pop(fd, f"fd {fd}")
        try:
            self._call("close", subject)
        finally:
            super().close(fd)

    def rename(self, source: Path, target: Path) -> None:
        self._call("rename", target)
        super().rename(source, target)

    def link(self, source: Path, target: Path) -> None:
        self._call("link", source)
        super().link(source, target)

    def unlink(self, path: Path) -> None:
        self._call("unlink", path)
        super().unlink(path)

    def fsync_dir(self, directory: Path) -> None:
        self._call("fsync_dir", directory)
        if self.power_cuts:
            super().fsync_dir(directory)

    def mkdir(self, directory: Path) -> None:
        self._call("mkdir", directory)
        super().mkdir(directory)

    # -- the composed operations: their steps are about the file they write -----------

    def replace(self, path: Path, data: bytes, **options: Any) -> None:
        with self._about(path):
            super().replace(path, data, **options)

    def create(self, path: Path, first: bytes) -> int:
        with self._about(path):
            return super().create(path, first)
