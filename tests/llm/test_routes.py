"""Routes: a model's endpoint, key and prices; the problems of an agent's ``[llm]`` before a run."""

from __future__ import annotations

import pytest

from agentops.llm.providers import wire_format
from agentops.llm.providers.base import ChatRequest
from agentops.llm.routes import problems, route
from agentops.project.config import AgentConfig, ProjectConfig
from leakscan import FAKE_SECRETS

KEY = FAKE_SECRETS["FAKE_OPENAI_KEY"]

PROVIDERS = {
    "fake": {"base_url": "http://127.0.0.1:9/v1/", "api_key_env": "FAKE_OPENAI_KEY"},
    "local": {"base_url": "http://127.0.0.1:9/v1"},
}
PRICED = {"input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 2000.0}


def project_config(**models: dict) -> ProjectConfig:
    return ProjectConfig.model_validate({"providers": PROVIDERS, "models": models})


def test_problems_name_unknown_models_missing_keys_and_missing_prices_under_a_cap():
    """One line per problem, each model once, tiers included; a capped agent needs prices."""
    config = project_config(
        small={"provider": "fake", "name": "small", **PRICED},
        local={"provider": "local", "name": "llama"},
    )
    agent = AgentConfig.model_validate(
        {
            "llm": {"model": "small", "fallbacks": ["nope", "local"], "tiers": {"cheap": "local"}},
            "limits": {"cost_usd_per_day": 1.0},
        }
    )
    assert problems(agent, config, {}) == [
        "[llm] small: $FAKE_OPENAI_KEY is not set for fake",
        "[llm] model 'nope' is not in agentops.toml [models]",
        "[llm] local has no prices, and the agent has a USD cap to keep",
    ]
    uncapped = AgentConfig.model_validate({"llm": {"model": "small", "fallbacks": ["local"]}})
    assert problems(uncapped, config, {"FAKE_OPENAI_KEY": KEY}) == []
    assert problems(uncapped, config, {"FAKE_OPENAI_KEY": " \n"}) == [
        "[llm] small: $FAKE_OPENAI_KEY is not set for fake"
    ]


def test_a_context_window_max_tokens_fills_is_a_problem():
    """max_tokens as large as the window: no prompt could ever fit, found before the run."""
    config = project_config(small={"provider": "local", "name": "small", "context_window": 512})
    agent = AgentConfig.model_validate({"llm": {"model": "small", "max_tokens": 512}})
    assert problems(agent, config, {}) == [
        "[llm] max_tokens 512 leaves no room for a prompt in small's context_window 512"
    ]


def test_a_route_is_the_endpoint_key_and_prices_of_a_model():
    """base_url's trailing slash is tolerated; a cost is per million tokens; no prices, no cost."""
    config = project_config(
        small={"provider": "fake", "name": "small-2026", **PRICED},
        local={"provider": "local", "name": "llama"},
    )
    small = route("small", config, {"FAKE_OPENAI_KEY": KEY})
    request = ChatRequest(model=small.model, messages=[], max_tokens=1)
    assert small.kind == "openai"
    assert wire_format(small.kind).build(request, small).url == (
        "http://127.0.0.1:9/v1/chat/completions"
    )
    assert (small.model, small.api_key, small.key_env) == ("small-2026", KEY, "FAKE_OPENAI_KEY")
    assert small.cost_usd(10, 5) == pytest.approx(0.02)
    local = route("local", config, {})
    assert (local.api_key, local.priced, local.cost_usd(10, 5)) == (None, False, None)
