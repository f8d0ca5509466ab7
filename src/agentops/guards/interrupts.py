"""The run's time limit and termination signals, turned into a clean stop.

The timeout clock starts when the run takes its lock and covers everything
after: importing the agent, its validators, its retries. While agent code
runs (:meth:`RunInterrupts.armed`), SIGALRM (the timeout), SIGTERM and SIGINT
raise :class:`StopRun` in it. ``StopRun`` derives from ``BaseException`` so an
agent's ``except Exception`` cannot swallow it; if the agent swallows even
that, it is raised again every second, and after :meth:`grace_s` more the
run is abandoned (``on_abandon``: the CLI exits the process; the next run
recovers its journal). Outside agent code a signal is only remembered.

Inside :meth:`RunInterrupts.critical` sections (a guarded action's ``do()``
and its journal records) a stop waits for the section to end, for at most
the grace period: a side effect that finishes is recorded, one that hangs is
abandoned as unresolved.

Signals can only be handled in the main thread; elsewhere the limits are not
enforced. A process agent code forks gets the handlers that were there
before the run: a SIGTERM that ends the run's processes ends a forked copy
too, instead of raising ``StopRun`` into the run's code in it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Self

from agentops.errors import Interrupted, RunTimeout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType, TracebackType

    from agentops.errors import TaskFailed

__all__ = ["MAX_GRACE_S", "MIN_GRACE_S", "RunInterrupts", "StopRun", "grace_s"]

MIN_GRACE_S = 2.0
MAX_GRACE_S = 30.0
"""A stop waits the run's timeout for a side effect in flight, within these bounds."""


def grace_s(timeout_s: float) -> float:
    """How long a stop waits for a side effect in flight, and then for the agent to let go."""
    return min(MAX_GRACE_S, max(MIN_GRACE_S, timeout_s))


_REASONS = {signal.SIGALRM: "timeout", signal.SIGTERM: "interrupted", signal.SIGINT: "interrupted"}
_RESEND_S = 1.0


class StopRun(BaseException):
    """Raised inside agent code to end the run: ``reason`` is timeout or interrupted."""

    def __init__(self, reason: str, signal_name: str) -> None:
        """Record why the run is stopping."""
        super().__init__(f"{reason} ({signal_name})")
        self.reason = reason
        self.signal_name = signal_name

    def error(self, agent: str, what: str, timeout_s: float) -> TaskFailed:
        """The error the run ends with: :class:`RunTimeout` or :class:`Interrupted`."""
        if self.reason == "timeout":
            return RunTimeout(f"{agent}: {what} passed the timeout of {timeout_s:g}s", agent=agent)
        return Interrupted(f"{agent}: {what} interrupted by {self.signal_name}", agent=agent)


class _Critical:
    """The block of :meth:`RunInterrupts.critical`."""

    __slots__ = ("_interrupts",)

    def __init__(self, interrupts: RunInterrupts) -> None:
        self._interrupts = interrupts

    def __enter__(self) -> None:
        self._interrupts._critical += 1  # noqa: SLF001 - the same concept, split for speed

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        interrupts = self._interrupts
        interrupts._critical -= 1  # noqa: SLF001
        if exc_type is None and interrupts._armed and not interrupts._critical:  # noqa: SLF001
            interrupts._raise_pending()  # noqa: SLF001


class RunInterrupts:
    """Installs the handlers for the length of a run and restores them after."""

    def __init__(
        self,
        timeout_s: float,
        *,
        on_abandon: Callable[[StopRun], None] | None = None,
        on_stop: Callable[[StopRun, int], None] | None = None,
    ) -> None:
        """Stop agent code ``timeout_s`` seconds after the run starts.

        ``on_stop(stop, signum)`` is called once, when the first stop arrives
        (the processes the run started are told then).
        """
        self.timeout_s = timeout_s
        self.on_abandon = on_abandon
        self.on_stop = on_stop
        self.pending: StopRun | None = None
        self._pending_since = 0.0
        self._armed = False
        self._critical = 0
        self._previous: dict[int, object] = {}
        self._enabled = threading.current_thread() is threading.main_thread()
        self._section = _Critical(self)
        self._started = time.monotonic()

    @property
    def grace_s(self) -> float:
        """How long a stop waits for a critical section, and then for the agent to let go."""
        return grace_s(self.timeout_s)

    def __enter__(self) -> Self:
        """Install the signal handlers and start the timeout clock."""
        self._started = time.monotonic()
        if self._enabled:
            for signum in _REASONS:
                self._previous[signum] = signal.signal(signum, self._handle)
            signal.setitimer(signal.ITIMER_REAL, max(self.timeout_s, 1e-3))
            _ACTIVE.append(self)
            _reset_in_forked_children()
        return self

    def remaining_s(self) -> float:
        """Seconds left before the timeout."""
        return max(0.0, self.timeout_s - (time.monotonic() - self._started))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel the timer and restore the previous handlers."""
        if self._enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """Run agent code: a pending or arriving stop is raised in it.

        Inside a critical section a pending stop waits for the section to end.
        """
        self._armed = True
        try:
            if not self._critical:
                self._raise_pending()
            yield
        finally:
            self._armed = False

    def critical(self) -> _Critical:
        """Defer stops until the block ends, so a side effect in flight is recorded.

        A class, not a generator: every guarded action enters one, and a
        generator-based context manager costs several times as much.
        """
        return self._section

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.pending is None:  # the first stop is the cause; later ones are echoes
            name = signal.Signals(signum).name
            self.pending = StopRun(_REASONS[signal.Signals(signum)], name)
            self._pending_since = time.monotonic()
            if self.on_stop is not None:
                self.on_stop(self.pending, signum)
        if not self._armed:
            return
        waited = time.monotonic() - self._pending_since
        if waited > 2 * self.grace_s and self.on_abandon is not None:
            self.on_abandon(self.pending)  # the agent will not let go
        if not self._critical or waited > self.grace_s:
            self._raise_pending()
        signal.setitimer(signal.ITIMER_REAL, _RESEND_S)  # look again while it waits

    def _raise_pending(self) -> None:
        if self.pending is not None:
            if self._enabled:
                # Raised again if the agent catches it with a bare except.
                signal.setitimer(signal.ITIMER_REAL, _RESEND_S)
            raise self.pending


_ACTIVE: list[RunInterrupts] = []
"""The interrupts whose handlers are installed, innermost last."""


@functools.cache
def _reset_in_forked_children() -> None:
    # Registered once (a registration cannot be undone): in a child forked
    # while a run's handlers are in place, the handlers from before the run.
    os.register_at_fork(after_in_child=_in_forked_child)


def _in_forked_child() -> None:
    while _ACTIVE:
        interrupts = _ACTIVE[-1]
        interrupts._enabled = False  # noqa: SLF001 - the child runs no run
        interrupts._restore()  # noqa: SLF001
