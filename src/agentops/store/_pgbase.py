"""The PostgreSQL store's connection and tables: what its leases and records are written through.

One connection of the store's own, opened on first use; the tables' version
checked once on it (:mod:`agentops.store._pgschema`); every statement run
through the :class:`~agentops.store._pgconnection.Connector`, which bounds
each wait on the database and turns its errors into ``StateError``.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING, Any

from agentops.errors import LeaseLost, StateError
from agentops.project.config import StoreConfig
from agentops.store import _pgschema
from agentops.store._pgconnection import Connector
from agentops.store._url import safe_url
from agentops.store.base import StoreDescription

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import psycopg

    from agentops.store.base import Lease


class PostgresBase:
    """A PostgreSQL store's connection, its tables, and the statements run on them."""

    def __init__(
        self, url: str, *, schema: str | None = None, config: StoreConfig | None = None
    ) -> None:
        """Keep state in ``schema`` of the database at ``url`` (connected on first use).

        ``config`` is the project's ``[store]`` section: its schema (unless
        ``schema`` names one) and the bounds of every wait on the database.
        """
        config = config or StoreConfig()
        schema = schema or config.schema_name
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"not a schema name agentops uses: {schema!r}")
        self.url = url
        self.schema = schema
        self.where = f"{safe_url(url)} (schema {schema})"
        """The store, as said to people (no password)."""
        self._connector = Connector(url, config, where=self.where)
        self._connection: psycopg.Connection[Any] | None = None
        self._checked = False
        """Whether the tables were found to be this agentops' version."""
        self._created = False
        """Whether this object created the tables (it found none)."""
        self._claims: int | None = None
        """The tick claimer whose advisory lock the connection holds (``claim_ticks``)."""

    # -- connections and the tables ----------------------------------------------------

    def _main(self) -> psycopg.Connection[Any]:
        """The store's own connection, the tables' version checked once."""
        connection = self._open()
        if not self._checked:
            _pgschema.check_version(self._connector, connection, self.schema)
            self._checked = True
        return connection

    def _open(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._claims = None  # a new session holds no claims
            self._connection = self._connector.connect()
        return self._connection

    def migrate(self, *, create: bool = True) -> int:
        """Create (with ``create``) or migrate the tables; the version found before (0: none).

        Idempotent, and safe when hosts do it together. Without ``create`` it
        refuses, as :class:`~agentops.store.base.StoreUnavailable`, a schema
        holding no tables of agentops.
        """
        found = _pgschema.migrate(self._connector, self._open(), self.schema, create=create)
        self._checked = True
        self._created = self._created or found == 0
        return found

    def prepare(self, *, create: bool) -> StoreDescription:
        """Create (with ``create``) or migrate the tables, then describe the store."""
        self.migrate(create=create)
        return self.describe()

    def describe(self) -> StoreDescription:
        """The database (no password), its schema's version, and the agents it holds state for.

        ``created`` says whether this store object made the tables
        (:meth:`prepare`); describing alone only reads, and refuses tables
        it cannot use.
        """
        found = self.execute("SELECT count(*) FROM {s}.agent_state").fetchone()
        return StoreDescription(
            backend="postgresql",
            where=self.where,
            schema_version=_pgschema.SCHEMA_VERSION,
            created=self._created,
            agents=int(found[0]) if found else 0,
        )

    def execute(
        self,
        query: str,
        args: tuple[Any, ...] | Mapping[str, Any] = (),
        *,
        connection: psycopg.Connection[Any] | None = None,
    ) -> psycopg.Cursor[Any]:
        """Run one statement (on the store's connection unless told), errors as StateError.

        ``args`` fill the query's ``%s`` in order, or its ``%(name)s`` by name.
        """
        connection = connection or self._main()
        with self._connector.answering(connection):
            return self._exec(connection, query, args)

    def _exec(
        self,
        connection: psycopg.Connection[Any],
        query: str,
        args: tuple[Any, ...] | Mapping[str, Any] = (),
    ) -> psycopg.Cursor[Any]:
        # Every query names its tables {s}.table: the schema, a checked identifier.
        return connection.execute(query.replace("{s}", self.schema), args)

    @contextlib.contextmanager
    def _transaction(self, connection: psycopg.Connection[Any] | None = None) -> Iterator[Any]:
        connection = connection or self._main()
        with self._connector.answering(connection), connection.transaction():
            yield connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Callable[[str, tuple[Any, ...]], psycopg.Cursor[Any]]]:
        """Run statements in one transaction on the store's connection, as ``run(query, args)``."""
        with self._transaction() as connection:
            yield lambda query, args: self._exec(connection, query, args)

    def close(self) -> None:
        """Close the store's own connection (leases keep theirs)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._claims = None  # its lock went with the session

    def forsake(self) -> None:
        """In a forked child: let go of the connection inherited, leaving its session alone.

        The socket's descriptor is pointed at ``/dev/null``: the child neither
        says goodbye on the parent's session nor keeps it (and the locks it
        holds, such as a tick's claims) alive after the parent has died. The
        connection object stays referenced, so that nothing ever finishes it.
        """
        if self._connection is None or self._connection.closed:
            return
        socket = self._connection.pgconn.socket
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        if null != socket:  # else the copy was closed already: /dev/null keeps its number
            os.dup2(null, socket, inheritable=False)
            os.close(null)

    def _fenced(self, connection: psycopg.Connection[Any], lease: Lease) -> None:
        # Inside a transaction: the lease row is locked until it ends, so no
        # takeover can slip between this check and the writes after it.
        row = self._exec(
            connection,
            "SELECT 1 FROM {s}.lease WHERE agent = %s AND token = %s AND held "
            "AND expires_at > clock_timestamp() FOR UPDATE",
            (lease.agent, lease.token),
        ).fetchone()
        if row is None:
            raise LeaseLost(
                f"{lease.agent}: the run's lease lapsed or was taken over by another run; "
                "its state was not saved",
                agent=lease.agent,
            )

    def _unreadable(self, name: str, why: str, *, what: str = "state") -> StateError:
        return StateError(
            f"{name}: unreadable {what} in the store {self.where} ({why}); it was left as it is",
            agent=name,
        )
