"""Whose home it is: a run, or a command that writes, as another user is refused.

A run as root in a user's home would leave state, logs and locks the user's
own runs cannot write (every file is owner-only): the user's cron would fail
from then on. So, as git refuses a repository another user owns, agentops
refuses to write in a home another user owns, with one line naming both
users and the fix, unless the home allows that user (``[files] allow_users``
in agentops.toml) or is root's (root's runs can change anything written). A
root run so allowed hands what it creates to the home's owner
(:meth:`hand_over_to`), so the owner's runs go on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentops._infra.fs import user_name
from agentops.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from agentops.project.config import Files

__all__ = ["check_writer", "hand_over_to"]


def check_writer(home: Path, files: Files) -> None:
    """Raise :class:`ConfigError` unless this user or root owns ``home``, or ``files`` allows it."""
    try:
        owner = home.stat().st_uid
    except OSError:
        return  # a home that cannot be read fails in its own words when it is read
    me = os.geteuid()
    if owner in (me, 0):
        # Root's own runs can change whatever another user writes: a home root
        # owns (a container image's, made by COPY) may be run by the user the
        # pod runs as, who needs no name (a uid the image does not list).
        return
    owner_name, my_name = user_name(owner), user_name(me)
    if my_name in files.allow_users or str(me) in files.allow_users:
        return
    allowed = str(me) if my_name.startswith("uid ") else my_name  # a uid with no name: its number
    raise ConfigError(
        f"{home} belongs to {owner_name}, and agentops runs as {my_name}: what {my_name} wrote "
        f"there, {owner_name}'s own runs could not change; run it as {owner_name} "
        f"(sudo -u {owner_name} agentops ...), or allow it in {home / 'agentops.toml'}: "
        f'[files] allow_users = ["{allowed}"]'
    )


def hand_over_to(home: Path) -> tuple[int, int] | None:
    """The ``(uid, gid)`` what this process creates must be given to; None: keep it its own.

    Only root can give a file away, and only a root run in another user's
    home (one the home allows) needs to.
    """
    if os.geteuid() != 0:
        return None
    try:
        info = home.stat()
    except OSError:
        return None
    return None if info.st_uid == 0 else (info.st_uid, info.st_gid)
