"""A throwaway PostgreSQL server for the tests: its own cluster, on a unix socket, stopped after.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) are
installed with apt-get where they are missing (as root; see
:mod:`system`). The cluster lives in a temporary directory, listens on no
TCP port, trusts local connections and, when the suite runs as root, runs
as the ``postgres`` user (PostgreSQL refuses to run as root). Each test asks
for a database of its own (:meth:`PostgresServer.database`): stores in it
share nothing with other tests'.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from system import give_up, install_package

__all__ = ["PostgresServer"]

_START_TIMEOUT_S = 120


def _bindir() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class PostgresServer:
    """A cluster started for the test session."""

    def __init__(self) -> None:
        """Install the binaries if need be, make the cluster and start it."""
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
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        options = f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=200"
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
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

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests import it

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
