"""What may be said of a URL that is its own secret."""

from __future__ import annotations

__all__ = ["host_of"]


def host_of(url: str) -> str:
    """The host a URL names, to be said without its path or query (which may hold a token)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    try:
        return urlsplit(url).hostname or "?"
    except ValueError:  # "http://[::1": the URL is what failed
        return "?"
