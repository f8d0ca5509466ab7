"""The file-system seam: every file agentops writes goes through one :class:`FileSystem`.

Three promises rest on this module:

- **crash safety**: :meth:`FileSystem.replace` writes a temporary file,
  fsyncs it, renames it into place and fsyncs the directory, so a crash
  leaves the old version or the new one, never a mix;
- **no writes through links**: agentops often runs as root from cron, so a
  symbolic link planted at ``state/x.json.tmp`` or ``logs/x.jsonl`` must not
  make it write elsewhere. Every file is opened with ``O_NOFOLLOW`` (a link
  is ``ELOOP``: :func:`describe` turns it into a clear line), and temporary
  files are created exclusively;
- **owner only**: files are created ``0600`` and directories ``0700``; they
  hold an agent's data and its history. A home that asks for it
  (``[files] mode = "group"``) gets them group-readable (``0640``, ``0750``)
  for a second operator or a log shipper, whatever the umask; and a root run
  a home allows hands what it creates to the home's owner, so the owner's own
  runs can still write it.

Each step (open, write, zero fill, fsync, rename, directory fsync, link,
unlink, mkdir) is one method, and the composed operations call only those methods. A test
subclass makes any step fail with ``ENOSPC``, ``EIO`` or ``EACCES``
(``tests/faults.py``) and checks what survives.
"""

from __future__ import annotations

import contextlib
import errno
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from agentops._infra.files import STATE_FILE_LIMIT, read_regular

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "FileSystem", "MovedAside", "describe", "user_name"]

FILE_MODE = 0o600
"""Files agentops creates are readable by their owner only."""

DIR_MODE = 0o700
"""So are the directories it creates."""

_NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


_GROUP_READ = 0o040
_GROUP_LIST = 0o050


class MovedAside(NamedTuple):
    """A file agentops could not read and moved out of the way (:meth:`FileSystem.set_aside`)."""

    path: Path
    moved_to: Path
    why: str


def describe(exc: OSError) -> str:
    """A short reason for a failed file operation, naming a planted link for what it is.

    A permission denied names the file's owner and the user agentops runs as,
    when they differ: the usual cause is a run as another user (root) that
    left files behind.
    """
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link, and agentops does not read or write through links"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM) and isinstance(exc.filename, str | bytes):
        reason += _ownership(os.fsdecode(exc.filename))
    return reason


def _ownership(path: str) -> str:
    # The file, or the directory that would hold it if it does not exist.
    for candidate in (path, os.path.dirname(path)):  # noqa: PTH120 - the seam speaks os
        try:
            owner = os.lstat(candidate).st_uid
        except OSError:
            continue
        me = os.geteuid()
        if owner == me:
            return ""
        what = "it" if candidate == path else "its directory"
        mine = user_name(me)
        return (
            f" ({what} belongs to {user_name(owner)}, and agentops runs as {mine}: "
            f"chown {mine} {candidate} gives it back)"
        )
    return ""


def user_name(uid: int) -> str:
    """The login name of ``uid``, or ``uid N`` when it has none."""
    import pwd  # noqa: PLC0415 - only when a name is shown

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class FileSystem:
    """The steps agentops writes files with; subclass it to inject faults in tests.

    ``group``: what it creates (and the files it opens to write) are made
    group-readable. ``owner``: a ``(uid, gid)`` that what it creates is
    handed to (a root run in another user's home, allowed by that home).
    """

    group: bool = False
    owner: tuple[int, int] | None = None

    def __init__(self, *, group: bool = False, owner: tuple[int, int] | None = None) -> None:
        """Owner-only files unless ``group``; kept by the running user unless ``owner``."""
        self.group = group
        self.owner = owner

    # -- the steps ---------------------------------------------------------------------

    def open(self, path: Path, flags: int, mode: int = FILE_MODE) -> int:
        """``os.open`` that never follows a link at ``path``."""
        fd = os.open(path, flags | _NO_FOLLOW, mode)
        if flags & os.O_CREAT and (self.group or self.owner):
            try:
                self._adopt(fd, _GROUP_READ)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _adopt(self, target: int | Path, group_bits: int) -> None:
        # After creation, so no umask can take the group's bits away again.
        info = os.stat(target)  # noqa: PTH116 - a descriptor, or a directory just made
        mode = info.st_mode & 0o7777
        if self.group and info.st_uid == os.geteuid() and mode & group_bits != group_bits:
            os.chmod(target, mode | group_bits)  # noqa: PTH101 - a descriptor, or a directory
        if self.owner is not None and (info.st_uid, info.st_gid) != self.owner:
            os.chown(target, *self.owner)

    def write(self, fd: int, data: bytes) -> None:
        """Write all of ``data`` (``os.write`` may write less than asked)."""
        written = os.write(fd, data)
        if written < len(data):  # rare: a signal, a nearly full disk
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]

    def zero_fill(self, fd: int, start: int, length: int) -> None:
        """Write ``length`` zero bytes at ``start``, leaving the file position where it is.

        Space written ahead of an append-only file: writes into it later change
        no metadata (not even the size), so each fsync writes only their data.
        """
        zeros = memoryview(bytes(length))
        while zeros:
            zeros = zeros[os.pwrite(fd, zeros, start + length - len(zeros)) :]

    def fsync(self, fd: int) -> None:
        """Make what was written to ``fd`` survive a power cut."""
        os.fsync(fd)

    def close(self, fd: int) -> None:
        """Close ``fd``."""
        os.close(fd)

    def rewrite(self, fd: int, data: bytes) -> None:
        """Make the whole content of ``fd`` ``data``: overwrite from the start, then cut.

        Written first, so a write that fails (a full disk) leaves the old content.
        """
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, len(data) - len(view))
            view = view[written:]
        os.ftruncate(fd, len(data))

    def rename(self, source: Path, target: Path) -> None:
        """Atomically replace ``target`` with ``source`` (links are renamed, not followed)."""
        os.replace(source, target)  # noqa: PTH105 - the seam speaks os

    def link(self, source: Path, target: Path) -> None:
        """A hard link ``target`` to ``source`` (to the link itself, if it is one)."""
        os.link(source, target, follow_symlinks=False)

    def unlink(self, path: Path) -> None:
        """Remove ``path`` if it exists (a link is removed, not its target)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # noqa: PTH108 - the seam speaks os, like the fds it opens

    def fsync_dir(self, directory: Path) -> None:
        """Make a rename or a new name in ``directory`` survive a power cut."""
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _NO_FOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mkdir(self, directory: Path) -> None:
        """Create ``directory`` (and its missing parents) owner-only, if missing."""
        if directory.is_dir():
            if self.group:  # made owner-only before the home asked for group: opened up now
                self._adopt(directory, _GROUP_LIST)
            return
        missing = [directory, *(p for p in directory.parents if not p.exists())]
        for path in reversed(missing):
            path.mkdir(mode=DIR_MODE, exist_ok=True)
            if self.group or self.owner:
                self._adopt(path, _GROUP_LIST)

    # -- composed of the steps -----------------------------------------------------------

    def read(self, path: Path, *, limit: int = STATE_FILE_LIMIT) -> bytes | None:
        """The bytes of ``path``, None if it does not exist; a link is ``ELOOP``.

        Only a regular file of at most ``limit`` bytes is read: anything else
        (a FIFO, a device, a directory, a file too large) is refused with
        :class:`~agentops._infra.files.Unreadable`, never waited on.
        """
        return read_regular(path, limit=limit)

    def replace(
        self, path: Path, data: bytes, *, backup: bool = False, durable: bool = True
    ) -> None:
        """Write ``data`` as ``path`` atomically: the old version or the new, never a mix.

        With ``backup`` the previous version is kept as ``<path>.bak`` (a hard
        link: no copy, and no moment when ``path`` is missing). Without
        ``durable`` nothing is fsynced: for records whose loss in a power cut
        costs nothing (the last attempt of a run, for example).
        """
        self.mkdir(path.parent)
        self.refuse_link(path)  # renaming over it would be safe; keeping it as .bak is not
        tmp = path.with_name(path.name + ".tmp")
        self.unlink(tmp)  # left by a crash, or planted: created afresh, exclusively
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            try:
                self.write(fd, data)
                if durable:
                    self.fsync(fd)
            finally:
                self.close(fd)
            if backup and os.path.lexists(path):
                bak_tmp = path.with_name(path.name + ".bak.tmp")
                self.unlink(bak_tmp)
                self.link(path, bak_tmp)
                self.rename(bak_tmp, path.with_name(path.name + ".bak"))
            self.rename(tmp, path)
            if durable:
                self.fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                self.unlink(tmp)
            raise

    def set_aside(self, path: Path, *, why: str) -> MovedAside:
        """Rename an unreadable file out of the way, never deleting it.

        For files agentops can rebuild (a lock, a tick, notices, a deadline
        marker): ``<name>.unreadable-<UTC time>``, kept for people to look at.
        """
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        target = path.with_name(f"{path.name}.unreadable-{stamp}")
        n = 1
        while os.path.lexists(target):  # never over an earlier one
            n += 1
            target = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
        self.rename(path, target)
        return MovedAside(path, target, why)

    @staticmethod
    def refuse_link(path: Path) -> None:
        """Raise ``ELOOP`` if ``path`` is a symbolic link: agentops never goes through one."""
        if os.path.islink(path):  # noqa: PTH114 - the seam speaks os
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))

    def create(self, path: Path, first: bytes) -> int:
        """Create ``path`` holding ``first``, durably and at once; return an fd writing after it.

        ``first`` goes to a temporary file, fsynced, renamed into place, and the
        directory fsynced: a file at ``path`` never exists without it (a
        journal always starts with a whole record). A link at ``path`` is
        refused, like everywhere.
        """
        self.mkdir(path.parent)
        self.refuse_link(path)
        tmp = path.with_name(path.name + ".tmp")
        self.unlink(tmp)
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            self.write(fd, first)
            self.fsync(fd)
            self.rename(tmp, path)  # the descriptor follows the file
            self.fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                self.close(fd)
            with contextlib.suppress(OSError):
                self.unlink(tmp)
            raise
        return fd
