"""What a caller may vary about one invocation, and the run id it gets."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, NamedTuple

from agentops._infra.clock import utcnow
from agentops.errors import ConfigError
from agentops.model.status import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime, tzinfo
    from typing import TextIO

    import httpx

    from agentops._infra.clock import Clock
    from agentops._infra.fs import FileSystem
    from agentops.store import Store

__all__ = ["SKIP_EXIT_CODE_ENV", "RunOptions", "new_run_id", "skip_exit_code"]

SKIP_EXIT_CODE_ENV = "AGENTOPS_SKIP_EXIT_CODE"
"""The exit code of a run skipped or stopped by policy, instead of 75 (a Kubernetes Job sets 0)."""

_HIGHEST_EXIT_CODE = 255


class RunOptions(NamedTuple):
    """What a caller may vary about a run: mostly for tests, which drive time and faults."""

    dry_run: bool = False
    clock: Clock = utcnow
    sleep: Callable[[float], None] = time.sleep
    environ: Mapping[str, str] | None = None
    console: TextIO | None = None
    http_transport: httpx.BaseTransport | None = None
    exit_on_abandon: bool = False
    """Exit the process when agent code will not stop (the CLI sets this)."""
    fs: FileSystem | None = None
    """The file-system seam of the file store (tests make its steps fail)."""
    store: Store | None = None
    """The store to use instead of the one the project is configured for."""
    scheduled: bool = False
    """Started by cron (``--scheduled``): claim the schedule's tick first."""
    tick: datetime | None = None
    """The moment whose schedule tick a scheduled run claims: when its command (``agentops run``
    or ``agentops tick``) started, however late the claim is made. None: the run's own start."""
    tick_claimer: int | None = None
    """The claim of ``agentops tick`` that won ``tick`` already (with every other due agent's):
    the run starts the tick only while it is claimed and not started. None: the run claims it."""
    group_waited_s: float = 0.0
    """How long the run already waited for a slot of its group (in ``agentops tick``'s queue):
    its wait for one is that much shorter than its ``timeout``."""
    zone: tzinfo | None = None
    """The zone a scheduled run reads its schedule in (``agentops tick`` gives each child its
    own). None: cron's, ``$TZ`` as the run was started, never a ``TZ`` of its env files."""


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time and is unique enough: ``20261122T031000Z-3fa2c1``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


def skip_exit_code(environ: Mapping[str, str]) -> int:
    """The exit code of a run skipped or stopped by policy: ``$AGENTOPS_SKIP_EXIT_CODE``, else 75.

    Read before the run starts, so a value that is not an exit code refuses the
    run (:class:`~agentops.errors.ConfigError`, 78) rather than ending it wrongly.
    """
    raw = environ.get(SKIP_EXIT_CODE_ENV, "").strip()
    if not raw:
        return ExitCode.SKIPPED
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _HIGHEST_EXIT_CODE:
        raise ConfigError(
            f"{SKIP_EXIT_CODE_ENV}={raw!r} is not an exit code: give a number from 0 to 255"
        )
    return int(raw)
