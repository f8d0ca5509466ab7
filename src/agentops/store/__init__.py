"""Where agents' state lives: backends registered by URL scheme, opened by :func:`open_store`.

:class:`~agentops.store.base.Store` is the seam every backend implements, and
``tests/test_store_contract.py`` the suite every backend passes;
:mod:`agentops.store.registry` picks the backend from a URL's scheme:
:class:`~agentops.store.file.FileStore` (files in ``state/``) when there is
no URL, :class:`~agentops.store.postgres.PostgresStore` for ``postgresql://``
(or a libpq keyword string).
:mod:`agentops.store.copy` moves agents from one store to another.
"""

from __future__ import annotations

from agentops.store._url import safe_url
from agentops.store.base import (
    Attempt,
    Holder,
    JournalWriter,
    Lease,
    Notices,
    Pause,
    ReplyStore,
    Store,
    StoreDescription,
    StoreMisconfigured,
    StoreUnavailable,
)
from agentops.store.registry import (
    STORE_URL_ENV,
    Backend,
    StoreOptions,
    backend_for,
    open_store,
    register_backend,
    unregister_backend,
)

__all__ = [
    "STORE_URL_ENV",
    "Attempt",
    "Backend",
    "Holder",
    "JournalWriter",
    "Lease",
    "Notices",
    "Pause",
    "ReplyStore",
    "Store",
    "StoreDescription",
    "StoreMisconfigured",
    "StoreOptions",
    "StoreUnavailable",
    "backend_for",
    "open_store",
    "register_backend",
    "safe_url",
    "unregister_backend",
]
