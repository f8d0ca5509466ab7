"""What a model name means: its provider's endpoint, API and key, its prices, its window.

Names are those of ``agentops.toml`` ``[models]``; each names a provider of
``[providers]``: an endpoint speaking the wire format of its ``kind``
(:mod:`agentops.llm.providers`; ``openai`` unless it says otherwise), whose
key (if it needs one) comes from the environment variable ``api_key_env``,
never from a file. :func:`problems` is what ``agentops check`` and every run
check before anything is sent: an unknown model, a provider of a kind
agentops does not know, a key that is not set, a model without prices while
the agent has a USD cap to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentops.llm.providers import kinds

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agentops.llm.providers.base import Structured, Usage
    from agentops.project.config import AgentConfig, ProjectConfig

__all__ = ["CACHE_WRITE_MARKUP", "Route", "model_problems", "models_of", "problems", "route"]

CACHE_WRITE_MARKUP = 1.25
"""A cache write's price over input's when the model names none: Anthropic's five-minute cache."""


@dataclass(frozen=True, slots=True)
class Route:
    """One model, ready to call."""

    name: str
    """The name in ``[models]`` (what ``llm.call`` logs)."""
    kind: str
    """The wire format its provider speaks (:mod:`agentops.llm.providers`)."""
    base_url: str
    """The provider's ``base_url``: the wire format makes the request's URL from it."""
    api_key: str | None
    key_env: str | None
    """The environment variable the key comes from (None: the provider needs none)."""
    model: str
    """The provider's own name for it."""
    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    cache_read_usd_per_mtok: float | None
    cache_write_usd_per_mtok: float | None
    context_window: int | None
    structured: Structured
    """How a schema is asked for, as configured (a run may learn to ask more plainly)."""
    token_param: str
    reasoning_effort: str | None

    @property
    def priced(self) -> bool:
        """Whether a call's cost can be computed."""
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float | None:
        """The price of a call, no prompt cache involved; None for a model without prices."""
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1e6

    def cost_of(self, usage: Usage) -> float | None:
        """The price of a reply's ``usage``, its cached and cache-writing prompt tokens apart."""
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        fresh = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens)
        return (
            fresh * self.input_usd_per_mtok
            + usage.cached_tokens * self._read_price()
            + usage.cache_write_tokens * self._write_price()
            + usage.output_tokens * self.output_usd_per_mtok
        ) / 1e6

    def worst_usd(self, tokens_in: int, tokens_out: int, *, cache_write: bool) -> float | None:
        """The most a call can cost: every prompt token at the dearest price it may have.

        ``cache_write``: the request asks the provider to cache its prompt, which
        may cost more than reading it.
        """
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        prices = [self.input_usd_per_mtok, self._read_price()]
        if cache_write:
            prices.append(self._write_price())
        return (tokens_in * max(prices) + tokens_out * self.output_usd_per_mtok) / 1e6

    def _read_price(self) -> float:
        if self.cache_read_usd_per_mtok is not None:
            return self.cache_read_usd_per_mtok
        return self.input_usd_per_mtok or 0.0

    def _write_price(self) -> float:
        if self.cache_write_usd_per_mtok is not None:
            return self.cache_write_usd_per_mtok
        return (self.input_usd_per_mtok or 0.0) * CACHE_WRITE_MARKUP


def models_of(config: AgentConfig) -> list[str]:
    """Every model an agent may call: its chain, then its tiers, each once."""
    llm = config.llm
    return list(dict.fromkeys([*llm.chain(), *llm.tiers.values()]))


def problems(config: AgentConfig, project: ProjectConfig, environ: Mapping[str, str]) -> list[str]:
    """What stops the agent's models from being called as configured, one line each."""
    return [
        problem
        for name in models_of(config)
        for problem in model_problems(
            name,
            project,
            environ,
            capped=config.limits.usd_capped,
            max_tokens=config.llm.max_tokens,
        )
    ]


def model_problems(
    name: str,
    project: ProjectConfig,
    environ: Mapping[str, str],
    *,
    capped: bool,
    max_tokens: int | None = None,
) -> list[str]:
    """What stops model ``name`` from being called, one line each.

    ``capped``: the agent keeps a USD cap, so the model needs prices.
    ``max_tokens``: the reply's room, checked against the context window.
    """
    model = project.models.get(name)
    if model is None:
        return [f"[llm] model {name!r} is not in agentops.toml [models]"]
    found = []
    provider = project.providers[model.provider]
    if provider.kind not in kinds():
        found.append(
            f"[llm] {name}: provider {model.provider!r} is of kind {provider.kind!r}, "
            f"which agentops does not know (it knows {', '.join(kinds())})"
        )
    if provider.kind == "anthropic" and model.token_param != "max_tokens":  # noqa: S105 - no secret
        found.append(
            f"[llm] {name}: token_param {model.token_param!r} is for OpenAI-compatible models "
            "(Anthropic's API takes max_tokens)"
        )
    if provider.api_key_env and not environ.get(provider.api_key_env, "").strip():
        found.append(f"[llm] {name}: ${provider.api_key_env} is not set for {model.provider}")
    if capped and not model.priced:  # what it costs could not be counted against the cap
        found.append(f"[llm] {name} has no prices, and the agent has a USD cap to keep")
    window = model.context_window
    if window is not None and max_tokens is not None and max_tokens >= window:
        found.append(
            f"[llm] max_tokens {max_tokens} leaves no room for a prompt in "
            f"{name}'s context_window {window}"
        )
    return found


def route(
    name: str, project: ProjectConfig, environ: Mapping[str, str], *, capped: bool = False
) -> Route:
    """The route of model ``name``; ``ValueError`` names what stops it from being called.

    A model named by the agent's code (``model=``) is checked here, as
    :func:`problems` checks the configured ones before the run begins.
    """
    found = model_problems(name, project, environ, capped=capped)
    if found:
        raise ValueError(found[0])
    model = project.models[name]
    provider = project.providers[model.provider]
    return Route(
        name=name,
        kind=provider.kind,
        base_url=provider.base_url,
        # Stripped: a key read from a file or a Secret often ends in a newline.
        api_key=(environ.get(provider.api_key_env) or "").strip() or None
        if provider.api_key_env
        else None,
        key_env=provider.api_key_env,
        model=model.name,
        input_usd_per_mtok=model.input_usd_per_mtok,
        output_usd_per_mtok=model.output_usd_per_mtok,
        cache_read_usd_per_mtok=model.cache_read_usd_per_mtok,
        cache_write_usd_per_mtok=model.cache_write_usd_per_mtok,
        context_window=model.context_window,
        structured=model.structured_output,
        token_param=model.token_param,
        reasoning_effort=model.reasoning_effort,
    )
