"""Deadline markers handed to the store by whoever outlives the run that left them.

A run its hard deadline ended cannot tell its store: it is gone. Its local
marker (``state/<name>.deadline``, :mod:`agentops.run.deadline`) tells the next
run on the same host; a store shared by hosts (PostgreSQL) keeps a copy for
the next run on any other host or pod, which then records the dead run as a
``timeout`` instead of a crash (:mod:`agentops.run.recovery`). The copy is
published by a process that outlived the run and saw it end:

- the run's keeper (:mod:`agentops.run.processes`), forked by every CLI
  run, once the run died without ending (``agentops run`` from a plain
  crontab line has no other survivor), unless a PID-1 supervisor does;
- the ``agentops tick`` parent, after a child that did not succeed
  (:mod:`agentops.run.tick`);
- the run itself, when it abandons itself (it is still alive, and holds its store);
- the PID-1 supervisor of a container (:mod:`agentops.run.pid1`), once every
  process of the run is gone.

Publishing is idempotent (one row per run), so two of them publishing the
same run change nothing. The file store keeps no copy: its markers are the
local files themselves.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from agentops._infra.fs import FileSystem
from agentops.errors import AgentOpsError
from agentops.run.deadline import MARKER_SUFFIX, read_marker
from agentops.store import open_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from agentops.project.home import Project
    from agentops.store import Store

__all__ = ["publish_ended"]


def publish_ended(
    project: Project,
    names: Iterable[str] | None = None,
    *,
    store: Store | None = None,
    environ: Mapping[str, str] | None = None,
    remove: bool = False,
    publish: bool = True,
) -> dict[str, str | None]:
    """Publish the marker of each ended run of ``names`` (None: every marker in ``state/``).

    The store is opened only if an ended run's marker is found (``store``:
    this one, left open). With ``remove``, a marker the store now keeps is
    removed locally: only when no watcher may still read it (every process
    of the run is gone). Returns each agent whose run was ended, with the
    line saying why its marker could not be published, if it could not
    (its run is then recorded as a timeout only on this host). Not
    ``publish``: only which runs were ended, the store left to another
    (a PID-1 supervisor, which publishes once every process is gone).
    """
    fs = FileSystem()
    directory = project.state_dir
    if names is None:
        names = _marked(directory)
    ended = []
    for name in names:
        marker = read_marker(fs, directory / f"{name}{MARKER_SUFFIX}")
        if marker is not None and marker.ended:
            ended.append((name, marker))
    if not ended or not publish:
        return dict.fromkeys(name for name, _ in ended)
    problems: dict[str, str | None] = dict.fromkeys(name for name, _ in ended)
    opened = None
    try:
        if store is None:
            store = opened = open_store(project, environ=environ)
        for name, marker in ended:
            if store.publish_marker(name, marker) and remove:
                with contextlib.suppress(OSError):  # read again, and recorded once
                    fs.unlink(directory / f"{name}{MARKER_SUFFIX}")
    except AgentOpsError as exc:  # the store cannot be opened or written
        problems = {
            name: f"{name}: run {marker.run_id} was ended by its deadline, but the store "
            f"could not keep its deadline marker ({exc.message}); only a run on this host "
            "will record it"
            for name, marker in ended
        }
    finally:
        close = getattr(opened, "close", None)  # not in the Store protocol; PostgreSQL's has one
        if callable(close):
            close()
    return problems


def _marked(directory: os.PathLike[str]) -> list[str]:
    # Every agent with a run's marker here (a dry run's is its own, never published).
    try:
        with os.scandir(directory) as entries:
            return sorted(
                entry.name.removesuffix(MARKER_SUFFIX)
                for entry in entries
                if entry.name.endswith(MARKER_SUFFIX) and ".dry-run" not in entry.name
            )
    except OSError:
        return []
