"""Where agents' state lives: :func:`open_store` picks the backend from configuration.

:class:`~agentops.store.base.Store` is the seam every backend implements;
:class:`~agentops.store.file.FileStore` (files in ``state/``) is the default.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agentops.errors import ConfigError
from agentops.store.base import Attempt, Holder, JournalWriter, Lease, Notices, Pause, Store

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agentops._infra.fs import FileSystem
    from agentops.project.home import Project

__all__ = [
    "STORE_URL_ENV",
    "Attempt",
    "Holder",
    "JournalWriter",
    "Lease",
    "Notices",
    "Pause",
    "Store",
    "open_store",
]

STORE_URL_ENV = "AGENTOPS_STORE_URL"
"""The environment variable naming a store; it wins over ``[store] url`` in agentops.toml."""


def open_store(
    project: Project, *, environ: Mapping[str, str] | None = None, fs: FileSystem | None = None
) -> Store:
    """The store the project is configured for: files in ``state/`` unless a URL says otherwise.

    ``$AGENTOPS_STORE_URL`` wins over ``[store] url`` in agentops.toml. Only
    the backend chosen is imported (psycopg is slow to import, and optional).
    """
    environ = os.environ if environ is None else environ
    url = environ.get(STORE_URL_ENV) or project.config.store.url
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"${STORE_URL_ENV} is not a postgresql:// URL")
        from agentops.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(url, schema=project.config.store.schema_name)
    from agentops.store.file import FileStore  # noqa: PLC0415

    return FileStore(project.state_dir, fs=fs)
