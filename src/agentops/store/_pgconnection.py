"""Connections to a PostgreSQL store that never wait without a bound.

Every connection the store opens is given, from the project's ``[store]``
section:

- libpq's ``connect_timeout`` and TCP keepalives, so that opening one, or a
  peer that vanished, is given up in time;
- the server's ``statement_timeout``, ``lock_timeout`` and
  ``idle_in_transaction_session_timeout``: a statement that runs or waits
  for a lock too long is cancelled, and a session of ours that froze inside
  a transaction is ended, so the row locks it held are freed for others;
- a bound on the client's side, which the server's cannot give when the
  server itself, or the network, stops answering (a frozen backend cancels
  nothing): a call not answered within the statement timeout and
  :data:`ANSWER_GRACE_S` is cut off by shutting its connection's socket down
  (:class:`_Watchdog`), and the wait ends at once with an error.

A store that could not be reached, or made a call wait its whole bound (a
timeout of any kind), is not asked again by the same :class:`Connector`:
it raises :class:`~agentops.store.base.StoreUnavailable` at once, so a
command reading many agents is done within one bound, not one per agent.

What a driver's error says is said without the store's passwords
(:mod:`agentops.store._url`): not even the pieces libpq quotes of a
password it read otherwise than written.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agentops.errors import StateError
from agentops.store._url import (
    hide_quoted,
    is_keyword_string,
    misread,
    safe_url,
    scrub,
    url_passwords,
)
from agentops.store.base import StoreMisconfigured, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import psycopg

    from agentops.project.config import StoreConfig

__all__ = ["ANSWER_GRACE_S", "APPLICATION_NAME", "Connector", "Statements"]

ANSWER_GRACE_S = 5.0
"""How much longer than ``statement_timeout`` a call may go unanswered before it is cut off.

The server's own timeout answers first when the server can; this is for when it cannot.
"""

APPLICATION_NAME = "agentops"
"""How agentops' sessions are named in ``pg_stat_activity`` (unless the URL names them)."""

_OUT = "or keep the password out of it: PGPASSWORD, ~/.pgpass or a service file"
_URL_HINT = (
    "percent-encode @ / ? # % : & and spaces in its password (%40 %2F %3F %23 %25 %3A %26 %20), "
    + _OUT
)
_KEYWORD_HINT = "quote a value holding spaces or quotes ('it\\'s'), " + _OUT


Run = "Callable[[str, tuple[Any, ...]], Any]"
"""``run(query, args)``: one statement of a transaction."""


class Statements(Protocol):
    """What the store's parts (notes, the reply cache) run their statements with: the store."""

    def execute(self, query: str, args: tuple[Any, ...] = ()) -> Any:
        """Run one statement on the store's connection (``{s}``: the schema)."""

    def transaction(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[str, tuple[Any, ...]], Any]]:
        """Run statements in one transaction, as ``run(query, args)``."""


class Connector:
    """Opens bounded connections to one database, and says its errors without passwords."""

    def __init__(self, location: str, config: StoreConfig, *, where: str) -> None:
        """Connect to ``location`` (a URL or a keyword string) with ``config``'s bounds."""
        self.location = location
        self.config = config
        self.where = where
        """The store as said to people."""
        self.answer_s = config.statement_timeout + ANSWER_GRACE_S
        """The longest a call waits for an answer (a transaction counts as one call)."""
        self._passwords = url_passwords(location)
        self._parameters: dict[str, Any] | None = None
        self._down: StoreUnavailable | None = None

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection in autocommit mode, its waits bounded; StoreUnavailable if none."""
        if self._down is not None:
            raise self._down
        _require_psycopg()
        import psycopg  # noqa: PLC0415 - only now: it is slow to import

        parameters = self._parameters or self._read_location()
        try:
            connection = psycopg.connect(autocommit=True, **parameters)
        except psycopg.Error as exc:
            raise self._gone(
                f"cannot connect to the store {self.where}: {self.said(exc)}"
            ) from None
        waits = {
            "statement_timeout": self.config.statement_timeout,
            "lock_timeout": self.config.lock_timeout,
            "idle_in_transaction_session_timeout": self.config.idle_in_transaction_timeout,
        }
        version = connection.info.server_version
        # SET (in milliseconds), not libpq's startup "options": connection poolers refuse those.
        settings = "; ".join(
            [f"SET {k} = {math.ceil(s * 1000)}" for k, s in waits.items()]
            + [f"SET tcp_{k} = {s}" for k, s in _keepalives(parameters, version).items()]
            # A session of agentops idles on purpose: a lease's, or a tick's
            # claims', for as long as its run or tick lasts; what a server's
            # idle_session_timeout would end is its holder's death.
            + (["SET idle_session_timeout = 0"] if version >= _IDLE_SESSION_TIMEOUT else [])
        )
        try:
            with self.answering(connection, failed="could not set up its session"):
                connection.execute(settings)
        except StateError:
            connection.close()
            raise
        return connection

    def _read_location(self) -> dict[str, Any]:
        """The location's parameters as libpq reads them, with agentops' own where it sets none."""
        import psycopg  # noqa: PLC0415 - imported by connect() already
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

        try:
            parameters: dict[str, Any] = conninfo_to_dict(self.location)
        except psycopg.Error as exc:
            hint = _KEYWORD_HINT if is_keyword_string(self.location) else _URL_HINT
            said = self.said(exc, reading_location=True)
            raise StoreMisconfigured(
                f"cannot read the store's location {self.where}: {said}; {hint}"
            ) from None
        if misread(self.location, parameters):
            raise StoreMisconfigured(
                f"libpq reads the store URL {self.where} otherwise than it was written: "
                + _URL_HINT
            )
        defaults = {
            "connect_timeout": max(2, math.ceil(self.config.connect_timeout)),  # libpq's least
            "keepalives": 1,
            "keepalives_idle": math.ceil(self.config.keepalives_idle),
            "keepalives_interval": math.ceil(self.config.keepalives_interval),
            "keepalives_count": self.config.keepalives_count,
            "application_name": APPLICATION_NAME,
        }
        self._parameters = defaults | parameters  # what the location says wins
        return self._parameters

    @contextlib.contextmanager
    def answering(
        self, connection: psycopg.Connection[Any], *, failed: str = "failed"
    ) -> Iterator[None]:
        """Bound the calls made on ``connection`` inside the block; their errors as StateError.

        ``failed`` words what went wrong: ``the store X failed: ...``.
        Blocks nest: the outermost bounds them all (a transaction is one call).
        """
        import psycopg  # noqa: PLC0415 - imported by connect() already

        if self._down is not None:
            raise self._down
        try:
            fd = connection.pgconn.socket
        except psycopg.Error:
            fd = -1  # closed: the call will say so
        watch = _WATCHDOG.arm(connection, fd, self.answer_s)
        try:
            yield
        except psycopg.Error as exc:
            if watch.cut:
                raise self._gone(
                    f"the store {self.where} did not answer within {self.answer_s:g} s "
                    f"(statement_timeout {self.config.statement_timeout:g} s and "
                    f"{ANSWER_GRACE_S:g} s more): the server or the network is stalled"
                ) from None
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                raise self._gone(
                    f"the store {self.where} waited longer than lock_timeout "
                    f"({self.config.lock_timeout:g} s) for a lock another session holds"
                ) from None
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise self._gone(
                    f"the store {self.where} did not answer within statement_timeout "
                    f"({self.config.statement_timeout:g} s): {self.said(exc)}"
                ) from None
            raise StateError(f"the store {self.where} {failed}: {self.said(exc)}") from None
        finally:
            _WATCHDOG.disarm(watch)
        if watch.cut:  # answered just as it was cut off: the connection is gone all the same
            connection.close()

    def _gone(self, message: str) -> StoreUnavailable:
        """The store made us wait our whole bound: the same command will not wait on it again."""
        self._down = StoreUnavailable(message)
        return self._down

    def said(self, exc: Exception, *, reading_location: bool = False) -> str:
        """A driver's error in one line, without any piece of the store's passwords.

        ``reading_location``: libpq's error on reading the location, whose
        quoted pieces may be any part of a password, however short.
        """
        text = hide_quoted(str(exc), self.location) if reading_location else str(exc)
        said = scrub(safe_url(" ".join(text.split())), self._passwords)
        return said or type(exc).__name__


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401, PLC0415 - only a project with a PostgreSQL store needs it
    except ImportError:
        raise StoreMisconfigured(
            "the store is PostgreSQL, but psycopg is not installed: "
            "pip install 'agentops[postgres]'"
        ) from None


@dataclass(slots=True, eq=False)
class _Watch:
    """One bounded block on one connection, in one thread."""

    key: tuple[int, int]
    fd: int
    deadline: float
    depth: int = 1
    cut: bool = False


_TCP_USER_TIMEOUT = 120000
"""The first server version (PostgreSQL 12) with ``tcp_user_timeout``."""

_IDLE_SESSION_TIMEOUT = 140000
"""The first server version (PostgreSQL 14) with ``idle_session_timeout``."""


def _keepalives(parameters: dict[str, Any], server_version: int) -> dict[str, int]:
    """The server's TCP keepalives for a session: the client's own, so both ends give up as soon.

    Left to the system's (two hours on Linux, and a quarter of an hour for
    an answer never acknowledged), a host lost would keep its session, and
    the locks it holds (a tick's claims, a group's slot), that long. The
    server ignores them on a Unix socket, where no peer vanishes (and libpq
    reads none there: a value it would refuse on TCP is left out, not sent).
    """
    if _seconds(parameters.get("keepalives", 1)) == 0:
        return {}
    found = {}
    for name in ("keepalives_idle", "keepalives_interval", "keepalives_count"):
        seconds = _seconds(parameters.get(name))
        if seconds is not None and seconds > 0:
            found[name] = seconds
    if len(found) == 3 and server_version >= _TCP_USER_TIMEOUT:  # noqa: PLR2004 - the three
        # An answer the host never acknowledged: retransmitted, not probed, unless bounded too.
        idle, interval, count = found.values()
        found["user_timeout"] = min((idle + interval * count) * 1000, _INT_MAX)
    return found


_INT_MAX = 2**31 - 1
"""The largest value of the server's integer settings (milliseconds for ``tcp_user_timeout``)."""


def _seconds(value: object) -> int | None:
    """A keepalive parameter as a whole number in the server's range, None if it is not one."""
    try:
        seconds = math.ceil(float(str(value)))
    except (ValueError, OverflowError):  # not a number, NaN, infinite
        return None
    return seconds if 0 <= seconds <= _INT_MAX else None


class _Watchdog:
    """One thread cutting off connections whose calls outlived their bound.

    Arming and disarming cost a lock and a dict entry: the thread sleeps
    until the soonest deadline and is woken only for a sooner one, so a
    run's hundreds of calls wake it rarely.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watches: dict[tuple[int, int], _Watch] = {}
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf

    def arm(self, connection: object, fd: int, seconds: float) -> _Watch:
        key = (id(connection), threading.get_ident())
        with self._lock:
            watch = self._watches.get(key)
            if watch is not None:  # nested: the outer block's bound holds
                watch.depth += 1
                return watch
            watch = _Watch(key, fd, time.monotonic() + seconds)
            self._watches[key] = watch
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="agentops-store-watchdog", daemon=True
                )
                self._thread.start()
            elif watch.deadline < self._wakes_at:
                self._lock.notify()
        return watch

    def disarm(self, watch: _Watch) -> None:
        with self._lock:
            watch.depth -= 1
            if watch.depth == 0:
                self._watches.pop(watch.key, None)

    def _watch(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for watch in self._watches.values():
                    if not watch.cut and watch.deadline <= now:
                        watch.cut = True
                        _shut_down(watch.fd)
                deadlines = [w.deadline for w in self._watches.values() if not w.cut]
                self._wakes_at = min(deadlines, default=math.inf)
                self._lock.wait(None if self._wakes_at == math.inf else self._wakes_at - now)

    def forget(self) -> None:
        """In a forked child: the thread is not there, nor are the calls it watched."""
        self._lock = threading.Condition()
        self._watches = {}
        self._thread = None
        self._wakes_at = math.inf


def _shut_down(fd: int) -> None:
    """Shut the socket down under a call waiting on it: the wait ends with an error at once.

    The block that armed the watch is still inside its call, so ``fd`` is
    still the connection's: a connection is closed only after its block.
    """
    if fd < 0:
        return
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget)
