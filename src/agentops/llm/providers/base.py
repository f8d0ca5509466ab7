"""The wire-format protocol: what a provider's API must be told, and what its answers mean.

The model client (:mod:`agentops.llm.client`) owns everything that is the
same whatever the provider: the chain of models, retries, re-asks, the cache,
the money reserved and settled, the PII screen, the log. A
:class:`WireFormat` owns the rest, one provider API's own shape, in three
steps that do no I/O:

- :meth:`~WireFormat.build`: a provider-neutral :class:`ChatRequest` as the
  HTTP request this API expects (:class:`WireRequest`: URL, headers, JSON body);
- :meth:`~WireFormat.error`: whether an answer is an error, and of what kind
  (:class:`WireError`: transient or not, the provider's own message); a 200
  may carry one, and a format may say so;
- :meth:`~WireFormat.parse`: an answer that is no error, as a neutral
  :class:`ChatReply` (the text, the :class:`Usage`, the raw finish reason).

The client sends the request through ``ctx.http`` and hands the response to
the format; a format never sees the network, the budget or the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "ChatReply",
    "ChatRequest",
    "Endpoint",
    "Response",
    "Usage",
    "WireError",
    "WireFormat",
    "WireRequest",
]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What to ask a model, whatever its provider's API."""

    model: str
    """The provider's own name for the model."""
    messages: Sequence[Mapping[str, str]]
    """The conversation: ``{"role": "system" | "user" | "assistant", "content": text}``."""
    max_tokens: int
    """The most tokens the reply may have."""
    temperature: float | None = None
    """None: the provider's default."""
    want_json: bool = False
    """Whether to ask the provider for a JSON reply (the agent gave a schema, and the
    model takes a JSON mode: ``[models] json_mode``)."""
    schema: Mapping[str, Any] | None = None
    """The JSON Schema the reply must conform to, when the agent gave one (the
    messages already ask for it; a format may send it too)."""


class Endpoint(Protocol):
    """Where a model is served and how to prove the right to call it (a route)."""

    @property
    def base_url(self) -> str:
        """The provider's ``base_url``, as configured."""

    @property
    def api_key(self) -> str | None:
        """The key from the provider's ``api_key_env`` (None: it needs none)."""


@dataclass(frozen=True, slots=True)
class WireRequest:
    """An HTTP POST, ready to send."""

    url: str
    headers: Mapping[str, str]
    """Beside ``Content-Type: application/json``, which the client always sends."""
    body: Mapping[str, Any]
    """A JSON object: the client encodes it (UTF-8, no NaN), and keys the cache on it
    and ``url`` (never on the headers, which hold the key)."""


class Response(Protocol):
    """An HTTP answer, as httpx gives it (headers looked up by any case)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""

    @property
    def content(self) -> bytes:
        """The body."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a reply cost in tokens; 0 where the provider did not say."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A model's answer, whatever its provider's API."""

    text: str
    usage: Usage
    finish_reason: str | None = None
    """Why the model stopped, in the provider's own word (None: it did not say)."""


@dataclass(frozen=True, slots=True)
class WireError:
    """An answer that is an error, as its wire format reads it."""

    status: int
    """The HTTP status it stands for (a 200 carrying an error names the one it means):
    the failure's category (``http_429``, ``http_5xx``, ``permission``...) follows it."""
    transient: bool
    """Whether the same request may succeed later (retried by ``[retry]``)."""
    message: str | None = None
    """The provider's own words about it (None: the answer said nothing usable)."""
    retry_after_s: float | None = None
    """How long the provider asked to wait before trying again."""


class WireFormat(Protocol):
    """One provider API's shape. Stateless: one instance serves every call and thread."""

    def build(self, request: ChatRequest, endpoint: Endpoint) -> WireRequest:
        """The HTTP request that asks ``endpoint`` for ``request``."""

    def error(self, response: Response) -> WireError | None:
        """What ``response`` means if it is an error; None if it is a reply to parse.

        Must not raise, whatever the body holds.
        """

    def parse(self, response: Response) -> ChatReply:
        """A reply (``error`` said it is none), read; ``ValueError`` if it is garbled."""
