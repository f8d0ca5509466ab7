"""Store backends by URL scheme, and the one way a store is opened.

A backend is a :class:`Backend`: the URL schemes it answers and a function
opening a store at a location. Built in:

- ``postgresql://`` and ``postgres://``, and libpq keyword strings
  (``host=db dbname=agents``): :class:`~agentops.store.postgres.PostgresStore`;
- no scheme (the project's ``state/``, or a directory named on the command
  line): :class:`~agentops.store.file.FileStore`, the default.

Another backend is one module plus one call, and agentops' own modules stay
as they are::

    register_backend(Backend(name="memory", schemes=("memory",), open=open_memory_store))

:func:`open_store` opens the store a project is configured for
(``$AGENTOPS_STORE_URL``, else ``[store] url`` in agentops.toml, else files in
``state/``) or the one ``agentops store copy --to`` names; everything that
opens a store goes through it. A backend's module is imported only when one
of its stores is opened: psycopg is slow to import, and optional.

:func:`backend_for` is the one place a location is read: what comes before
``://`` picks the backend; a location starting ``name=`` is a libpq keyword
string (PostgreSQL's, when libpq could read it: refused otherwise, never
taken for a directory so named); any other location is a directory.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentops.errors import UsageError
from agentops.project.tomlfile import key_place
from agentops.store._url import is_keyword_string, keyword_pairs, safe_url
from agentops.store.base import StoreMisconfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from agentops._infra.fs import FileSystem
    from agentops.project.config import StoreConfig
    from agentops.project.home import Project
    from agentops.store.base import Store

__all__ = [
    "FILES",
    "POSTGRESQL",
    "STORE_URL_ENV",
    "Backend",
    "StoreOptions",
    "backend_for",
    "load_backend",
    "open_store",
    "register_backend",
    "unregister_backend",
]

STORE_URL_ENV = "AGENTOPS_STORE_URL"
"""The environment variable naming a store; it wins over ``[store] url`` in agentops.toml."""


def _default_config() -> StoreConfig:
    from agentops.project.config import StoreConfig  # noqa: PLC0415 - a project has read it already

    return StoreConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreOptions:
    """What a store is opened with, besides its location."""

    config: StoreConfig = field(default_factory=_default_config)
    """The project's ``[store]`` section (the PostgreSQL schema and waits, for one)."""
    fs: FileSystem | None = None
    """The file system seam the file store writes through (tests inject faults there)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """A kind of store: its name, the URL schemes it answers, and how one is opened."""

    name: str
    """What :meth:`~agentops.store.base.Store.describe` calls it (``postgresql``)."""
    schemes: tuple[str, ...]
    """The URL schemes it answers, the first said in messages; none: the file store."""
    open: Callable[[str, StoreOptions], Store]
    """Open the store at a location (a URL of one of ``schemes``, or a directory)."""
    load: Callable[[], None] = lambda: None
    """Import what opening one of its stores imports (its driver), without opening one.

    A driver it cannot import is left for ``open`` to say what to install.
    """


def _open_files(location: str, options: StoreOptions) -> Store:
    from agentops.store.file import FileStore  # noqa: PLC0415 - only the backend chosen

    return FileStore(Path(location).absolute(), fs=options.fs)


def _open_postgresql(location: str, options: StoreOptions) -> Store:
    from agentops.store.postgres import PostgresStore  # noqa: PLC0415 - only the backend chosen

    return PostgresStore(location, config=options.config)


def _load_postgresql() -> None:
    import agentops.store.postgres  # noqa: F401, PLC0415 - only the backend chosen

    with contextlib.suppress(ImportError):  # opening the store says what to install
        import psycopg  # noqa: F401, PLC0415


FILES = Backend(name="files", schemes=(), open=_open_files)
"""Files in a directory: the default, for a location with no scheme."""

POSTGRESQL = Backend(
    name="postgresql",
    schemes=("postgresql", "postgres"),
    open=_open_postgresql,
    load=_load_postgresql,
)
"""A PostgreSQL database shared by every host (``pip install 'agentops[postgres]'``)."""

_BACKENDS: dict[str, Backend] = dict.fromkeys(POSTGRESQL.schemes, POSTGRESQL)
"""Each registered scheme, and its backend."""


def register_backend(backend: Backend) -> None:
    """Open the URLs of ``backend``'s schemes with it; a scheme taken already is a ValueError."""
    if not backend.schemes:
        raise ValueError(f"backend {backend.name!r} has no URL scheme: only files have none")
    taken = [scheme for scheme in backend.schemes if scheme in _BACKENDS]
    if taken:
        raise ValueError(f"URL scheme {taken[0]}:// is taken by {_BACKENDS[taken[0]].name!r}")
    _BACKENDS.update(dict.fromkeys(backend.schemes, backend))


def unregister_backend(backend: Backend) -> None:
    """Forget ``backend``: its schemes open nothing any more."""
    for scheme in backend.schemes:
        if _BACKENDS.get(scheme) is backend:
            del _BACKENDS[scheme]


def backend_for(location: str) -> Backend | None:
    """The backend opening ``location``: its scheme's, files for a directory, None if unknown.

    A libpq keyword string is PostgreSQL's; one libpq could not read is no one's.
    """
    if is_keyword_string(location):
        return POSTGRESQL if keyword_pairs(location) is not None else None
    scheme, found, _ = location.partition("://")
    if not found:
        # postgresql:/db (one slash) is a URL mistyped, not a directory (./postgresql:/db is).
        return None if location.partition(":")[0] in _BACKENDS else FILES
    return _BACKENDS.get(scheme)


def open_store(
    project: Project,
    *,
    url: str | None = None,
    environ: Mapping[str, str] | None = None,
    fs: FileSystem | None = None,
) -> Store:
    """The store at ``url`` or, without one, the store the project is configured for.

    ``url`` is a store named on the command line (``agentops store copy
    --to``): a URL of a registered scheme, or a directory; anything else is a
    usage error. Without it: ``$AGENTOPS_STORE_URL``, else ``[store] url`` in
    agentops.toml, which must be a URL of a registered scheme (a
    configuration error otherwise), else files in the project's ``state/``.
    """
    options = StoreOptions(config=project.config.store, fs=fs)
    if url is not None:
        backend = backend_for(url)
        if backend is None:
            raise UsageError(
                f"--to takes {_urls_taken()}, a libpq keyword string or a directory, "
                f"not {safe_url(url)}"
            )
        return backend.open(url, options)
    configured = _configured(project, environ)
    if not configured:
        return FILES.open(str(project.state_dir), options)
    backend = backend_for(configured)
    if backend is None or backend is FILES:
        environ = os.environ if environ is None else environ
        where = (
            f"${STORE_URL_ENV}"
            if environ.get(STORE_URL_ENV)
            else f"{key_place(project.config_path, ('store', 'url'))}: [store] url"
        )
        raise StoreMisconfigured(
            f"{where} is not {_urls_taken()} or a libpq keyword string libpq can read: "
            f"{safe_url(configured)}"
        )
    return backend.open(configured, options)


def load_backend(project: Project, *, environ: Mapping[str, str] | None = None) -> None:
    """Import the driver of the store the project is configured for, without opening it.

    For a process that loads, up front, everything it keeps until it exits
    (``agentops run`` under cron: :mod:`agentops.cli._cron_line`). A store
    that cannot be opened is left for :func:`open_store` to refuse.
    """
    configured = _configured(project, environ)
    backend = backend_for(configured) if configured else None
    if backend is not None:
        backend.load()


def _configured(project: Project, environ: Mapping[str, str] | None) -> str | None:
    """``$AGENTOPS_STORE_URL``, else ``[store] url`` in agentops.toml; None: neither."""
    environ = os.environ if environ is None else environ
    return environ.get(STORE_URL_ENV) or project.config.store.url


def _urls_taken() -> str:
    """``a postgresql:// URL`` (with every registered backend: ``a postgresql:// or x:// URL``)."""
    backends = dict.fromkeys(_BACKENDS.values())  # each once, in the order registered
    return f"a {' or '.join(f'{backend.schemes[0]}://' for backend in backends)} URL"
