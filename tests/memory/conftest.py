"""What the memory tests share: a sqlite3 without FTS5, no cached verdict, a PostgreSQL store."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from agentops.memory import notes as notes_module
from agentops.store.postgres import PostgresStore

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def no_fts5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sqlite3 look like a build without FTS5, until the test ends."""
    real_connect = sqlite3.connect

    class NoFts5:
        def __init__(self, *args, **kwargs):
            self.db = real_connect(*args, **kwargs)

        def execute(self, sql, *args):
            if "fts5" in sql:
                raise sqlite3.OperationalError("no such module: fts5")
            return self.db.execute(sql, *args)

        def close(self):
            self.db.close()

    notes_module._sqlite.cache_clear()
    monkeypatch.setattr(sqlite3, "connect", NoFts5)


@pytest.fixture(autouse=True)
def _fresh_sqlite_check() -> Iterator[None]:
    """A test that faked a build without FTS5 leaves no cached verdict behind."""
    yield
    notes_module._sqlite.cache_clear()


@pytest.fixture
def store(postgres) -> Iterator[PostgresStore]:
    """A fresh database whose tables ``agentops store init`` made."""
    found = PostgresStore(postgres.database())
    yield found
    found.close()
