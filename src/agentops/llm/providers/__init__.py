"""Provider wire formats, by the ``kind`` of ``[providers.NAME]`` in ``agentops.toml``.

Each kind names a :class:`~agentops.llm.providers.base.WireFormat` (build a
request, read an error, parse a reply): ``openai`` (:mod:`.openai`, the
default) and ``anthropic`` (:mod:`.anthropic`). A new provider API is one
module here holding its format, plus a line in ``_BUILT_IN``; code outside
agentops (a test, a plugin) calls :func:`register` instead.

Importing this package is cheap: a format's module (and whatever it imports)
is imported when a call first needs it, so ``agentops check`` can tell a
known kind from an unknown one without loading any.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentops.llm.providers.base import WireFormat

__all__ = ["DEFAULT_KIND", "kinds", "register", "unregister", "wire_format"]

DEFAULT_KIND = "openai"
"""The kind of a provider that names none."""

_BUILT_IN: dict[str, str] = {
    "anthropic": "agentops.llm.providers.anthropic",
    "openai": "agentops.llm.providers.openai",
}
"""Kind to the module whose ``WIRE_FORMAT`` speaks it, imported on first use."""

_formats: dict[str, WireFormat] = {}
_lock = threading.Lock()  # an agent's threads may make their first calls at once


def kinds() -> list[str]:
    """Every kind a provider may have, sorted."""
    return sorted({*_BUILT_IN, *_formats})


def wire_format(kind: str) -> WireFormat:
    """The format of ``kind``; ``ValueError`` if there is none."""
    found = _formats.get(kind)
    if found is not None:
        return found
    module = _BUILT_IN.get(kind)
    if module is None:
        raise ValueError(f"no wire format of kind {kind!r} (known: {', '.join(kinds())})")
    with _lock:
        found = _formats.get(kind)
        if found is None:
            found = importlib.import_module(module).WIRE_FORMAT
            _formats[kind] = found
    return found


def register(kind: str, wire: WireFormat) -> None:
    """Make ``kind`` a provider kind, spoken by ``wire``; a kind is registered once."""
    with _lock:
        if kind in _BUILT_IN or kind in _formats:
            raise ValueError(f"a wire format of kind {kind!r} is already registered")
        _formats[kind] = wire


def unregister(kind: str) -> None:
    """Forget a kind :func:`register` added (the built-in kinds stay)."""
    with _lock:
        if kind not in _BUILT_IN:
            _formats.pop(kind, None)
