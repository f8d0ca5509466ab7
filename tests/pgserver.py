"""A throwaway PostgreSQL server for the tests: its own cluster, on a unix socket, stopped after.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) are
installed with apt-get where they are missing (as root; see
:mod:`system`). The cluster lives in a temporary directory, listens on no
TCP port (but on a test's cable, :mod:`netns`, when given one), trusts
local connections and, when the suite runs as root, runs as the
``postgres`` user (PostgreSQL refuses to run as root). Each test asks
for a database of its own (:meth:`PostgresServer.database`): stores in it
share nothing with other tests', its tables made by ``agentops store init``
as an operator makes them (a store is never made by its first use).

:class:`Psql` is an operator's ``psql`` session on it (the server's own
client, fed statement by statement), and :func:`frozen` stops a server
process (a backend, or the postmaster) as a host that froze would.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from suite import eventually
from system import give_up, install_package

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from netns import Cable

__all__ = ["PostgresServer", "Psql", "frozen"]

_START_TIMEOUT_S = 120


def _bindir() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class PostgresServer:
    """A cluster started for the test session, or a hot standby replicating another."""

    def __init__(
        self,
        *,
        standby_of: PostgresServer | None = None,
        durable: bool = False,
        cable: Cable | None = None,
    ) -> None:
        """Install the binaries if need be, make the cluster and start it.

        ``standby_of``: a read-only replica of that server, streaming its
        changes (``pg_basebackup -R``), as a deployment's replica would.
        ``durable``: the server waits for its disk (``fsync``), as a
        deployment's does; the benchmarks need it. The tests kill clients and
        freeze backends, never the machine, so what they see is the same
        without it, sooner.
        ``cable``: the server also listens on TCP, on the server's side of
        that cable (:mod:`netns`), trusting the host at its other end.
        """
        bindir = _bindir()
        if bindir is None:
            install_package("postgresql")
            bindir = _bindir()
            if bindir is None:
                give_up("the postgresql package is installed, but no initdb was found")
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="agentops-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.socket_dir.mkdir()
        self._templates: dict[str, str] = {}
        """The database holding agentops' tables of a schema and version, copied for each test's."""
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if standby_of is None:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
                *(() if durable else ("--no-sync",)),
            )
        else:
            primary = f"host={standby_of.socket_dir} user=postgres"
            self._run(
                "pg_basebackup",
                "-D",
                str(self.data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-d",
                primary,
            )
        listen = ""
        if cable is not None:
            listen = cable.server_ip
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {cable.host_ip}/32 trust\n")
        options = f"-k {self.socket_dir} -c listen_addresses='{listen}' -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        log = str(self.root / "log")
        start = ("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        self._run(*start, wrap=None if cable is None else cable.server_side)

    def _run(
        self, tool: str, *args: str, wrap: Callable[[list[str]], list[str]] | None = None
    ) -> None:
        command = [str(self.bindir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        if wrap is not None:
            command = wrap(command)
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()[-2000:]}\n{tail}")

    def url(self, database: str = "postgres") -> str:
        """A libpq URL of ``database`` on this server (no password: local trust)."""
        return f"postgresql:///{database}?host={self.socket_dir}&user=postgres"

    def tcp_url(self, url: str, cable: Cable) -> str:
        """The database of ``url`` on this server, reached across ``cable`` from its host."""
        database = url.split("///", 1)[1].split("?", 1)[0]
        return f"postgresql://postgres@{cable.server_ip}:5432/{database}"

    def database(self, *, init: bool = True, schema: str = "agentops") -> str:
        """A new database, with agentops' tables in ``schema`` unless not ``init``; its URL."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests import it

        name = f"t_{uuid.uuid4().hex[:12]}"
        template = self._template(schema) if init else "template1"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _template(self, schema: str) -> str:
        # The tables `agentops store init` makes, made once a server and copied:
        # a copy is a third of the time of making them again, for every test.
        # One for each version too: a test may pretend to be another agentops.
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests import it

        from agentops.store import _pgschema  # noqa: PLC0415
        from agentops.store.postgres import PostgresStore  # noqa: PLC0415

        key = f"{schema}_v{_pgschema.SCHEMA_VERSION}"
        template = self._templates.get(key)
        if template is None:
            template = f"template_{key}"
            with psycopg.connect(self.url(), autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{template}"')
            store = PostgresStore(self.url(template), schema=schema)
            try:
                store.prepare(create=True)
            finally:
                store.close()
            self._templates[key] = template
        return template

    def password_user(self, url: str, password: str) -> str:
        """``url`` as a new user who must give ``password`` (not in the URL returned).

        The user is a superuser (what is tested is how it signs in, not what
        it may do); its line goes first in ``pg_hba.conf``, every other user
        still trusted, and the server reloads it.
        """
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests import it
        from psycopg import sql  # noqa: PLC0415

        user = f"u_{uuid.uuid4().hex[:12]}"
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {user} scram-sha-256\n" + hba.read_text())
        with psycopg.connect(self.url(), autocommit=True) as connection:
            create = sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}")
            connection.execute(create.format(sql.Identifier(user), sql.Literal(password)))
            connection.execute("SELECT pg_reload_conf()")
        signed_in = url.replace("user=postgres", f"user={user}")

        def asks_for_it() -> bool:  # the reload is the postmaster's, a moment later
            try:
                psycopg.connect(signed_in, password="").close()
            except psycopg.OperationalError:
                return True
            return False

        if not eventually(asks_for_it):
            raise RuntimeError("the server did not reload pg_hba.conf")
        return signed_in

    def postmaster_pid(self) -> int:
        """The server's main process: it forks a backend for each new connection."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_DONE = "-- psql done --"


class Psql:
    """An operator's psql session: each statement sent, its output read back."""

    def __init__(self, server: PostgresServer, url: str) -> None:
        """Open a session on the database at ``url``."""
        self.process = subprocess.Popen(
            [str(server.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = int(self.send("SELECT pg_backend_pid();")[0])
        """The session's backend, as the server's processes name it."""

    def send(self, sql: str) -> list[str]:
        """Run ``sql`` (it must not wait); the lines it printed."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{sql}\n\\echo '{_DONE}'\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline()) and line.rstrip("\n") != _DONE:
            lines.append(line.rstrip("\n"))
        return lines

    def close(self) -> None:
        """End the session (its transaction rolls back, its locks go)."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """Stop the processes ``pids`` (SIGSTOP) for the block, then let them go on (SIGCONT)."""
    stopped = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
