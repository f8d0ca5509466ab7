"""The wire-format protocol: what a provider's API must be told, and what its answers mean.

The model client (:mod:`agentops.llm.client`) owns everything that is the
same whatever the provider: the chain of models, retries, re-asks, the cache,
the money reserved and settled, the PII screen, the log. A
:class:`WireFormat` owns the rest, one provider API's own shape, in three
steps that do no I/O:

- :meth:`~WireFormat.build`: a provider-neutral :class:`ChatRequest` as the
  HTTP request this API expects (:class:`WireRequest`: URL, headers, JSON body);
- :meth:`~WireFormat.error`: whether an answer is an error, and of what kind
  (:class:`WireError`: transient or not, the provider's own message, a
  feature of the request it does not support); a 200 may carry one;
- :meth:`~WireFormat.parse`: an answer that is no error, as a neutral
  :class:`ChatReply` (the text if any, the :class:`Usage`, why the model
  stopped, a refusal), or :class:`UnreadableReply` with whatever usage it
  could still read, since that usage settles the money.

The client sends the request through ``ctx.http`` and hands the response to
the format; a format never sees the network, the budget or the log.

Tool calls fit the same three steps: the tools offered are ``tools`` of
:class:`ChatRequest` (:class:`ToolSpec`), the calls a reply asks for are
``tool_calls`` of :class:`ChatReply` (:class:`ToolCall`), and the
conversation carries them in two neutral messages each format writes its own
way::

    {"role": "assistant", "content": text, "tool_calls": [{"id", "name", "arguments"}]}
    {"role": "tool", "tool_call_id": id, "name": name, "content": text, "is_error": bool}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "FINISH_REASONS",
    "ChatReply",
    "ChatRequest",
    "Endpoint",
    "Response",
    "Structured",
    "ToolCall",
    "ToolSpec",
    "UnreadableReply",
    "Unsupported",
    "Usage",
    "WireError",
    "WireFormat",
    "WireRequest",
]

Structured = Literal["json_schema", "json_object", "prompt"]
"""How a schema is asked for: the schema itself (strict where the provider
takes it), a JSON mode, or the words of the prompt alone."""

Unsupported = Literal["structured", "token_param"]
"""A part of a request a provider may refuse: the schema or JSON mode asked for,
or the parameter carrying the output limit."""

FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls", "refusal", "other"})
"""Why a model stopped, in words every format maps its own to: a natural end (or a stop
sequence), the output limit, a content filter, tool calls, a refusal, anything else."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to a model: its name, what it does and when to use it, its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """The JSON Schema of its arguments (an object)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of a tool a model asked for."""

    id: str
    """The provider's id of the call, which its result must name."""
    name: str
    arguments: Any
    """The arguments: a JSON object as the model wrote it, or the text it wrote when that
    was not JSON (OpenAI's ``arguments`` is a string the model may garble)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What to ask a model, whatever its provider's API."""

    model: str
    """The provider's own name for the model."""
    messages: Sequence[Mapping[str, Any]]
    """The conversation: ``{"role": "system" | "user" | "assistant", "content": text}``,
    and in a tool loop the two tool messages of the module's docstring."""
    max_tokens: int
    """The most tokens the reply may have (hidden reasoning included)."""
    temperature: float | None = None
    """None: the provider's default."""
    schema: Mapping[str, Any] | None = None
    """The JSON Schema the reply must conform to, when the agent gave one (the
    messages already ask for it in words)."""
    structured: Structured | None = None
    """With ``schema``: how to ask the provider for it (``[models] structured``, or
    what the provider's "unsupported" taught the run). None: a text reply."""
    schema_name: str = "reply"
    """A name for the schema, where the API wants one (letters, digits, ``_``, ``-``)."""
    cache_system: bool = False
    """Whether to ask the provider to cache the system prompt (a stable prefix every
    run sends again), where its API asks to be told."""
    tools: Sequence[ToolSpec] = ()
    """The tools the model may call (none: a plain request)."""

    @property
    def want_json(self) -> bool:
        """Whether the provider is asked for JSON itself (a schema or a JSON mode)."""
        return self.structured in ("json_schema", "json_object")


class Endpoint(Protocol):
    """Where a model is served, the right to call it, and its API's options (a route)."""

    @property
    def base_url(self) -> str:
        """The provider's ``base_url``, as configured."""

    @property
    def api_key(self) -> str | None:
        """The key from the provider's ``api_key_env`` (None: it needs none)."""

    @property
    def token_param(self) -> str:
        """The parameter that carries the output limit (``[models] token_param``)."""

    @property
    def reasoning_effort(self) -> str | None:
        """How hard a reasoning model should think (``[models] reasoning_effort``)."""


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
    """What a reply cost in tokens; 0 where the provider did not say.

    ``input_tokens`` is the whole prompt, however the provider splits it:
    ``cached_tokens`` and ``cache_write_tokens`` are parts of it, priced at
    the model's cache prices. ``output_tokens`` is the whole reply,
    ``reasoning_tokens`` (hidden thinking) a part of it.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Of ``input_tokens``, those read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Of ``input_tokens``, those written to the provider's prompt cache."""
    reasoning_tokens: int = 0
    """Of ``output_tokens``, those spent thinking."""

    @property
    def said(self) -> bool:
        """Whether the provider said anything of what the reply cost."""
        return self.input_tokens > 0 or self.output_tokens > 0


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A model's answer, whatever its provider's API."""

    text: str | None
    """What the model wrote; None when it wrote nothing (a refusal, tool calls, a
    reasoning model that spent its budget thinking)."""
    usage: Usage
    finish_reason: str | None = None
    """Why the model stopped, as one of :data:`FINISH_REASONS` (None: it did not say)."""
    raw_finish_reason: str | None = None
    """The same in the provider's own word."""
    refusal: str | None = None
    """The model's refusal, in its words (or the provider's), when it refused."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asks to be called, in its order (several in one turn)."""


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
    unsupported: Unsupported | None = None
    """The part of the request the provider said it does not take: the schema or JSON
    mode asked for (the run asks the model more plainly), or the output limit's
    parameter (``[models] token_param``)."""


class UnreadableReply(ValueError):
    """A reply its format cannot read; ``usage``: what it still said it cost, if anything."""

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        """``message`` says what is wrong with it."""
        super().__init__(message)
        self.usage = usage


class WireFormat(Protocol):
    """One provider API's shape. Stateless: one instance serves every call and thread."""

    def build(self, request: ChatRequest, endpoint: Endpoint) -> WireRequest:
        """The HTTP request that asks ``endpoint`` for ``request``."""

    def error(self, response: Response) -> WireError | None:
        """What ``response`` means if it is an error; None if it is a reply to parse.

        Must not raise, whatever the body holds.
        """

    def parse(self, response: Response) -> ChatReply:
        """A reply (``error`` said it is none), read.

        ``ValueError`` if it is garbled: :class:`UnreadableReply` carries the
        usage it still gave, which then settles what the call cost.
        """
