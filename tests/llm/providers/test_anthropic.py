"""Anthropic's Messages API behind ``ctx.llm`` (``kind = "anthropic"``), against a fake of it.

:mod:`fakeanthropic` answers as Anthropic documents (content blocks, stop
reasons, usage with the prompt cache's counts apart, errors as ``{"type":
"error", "error": {...}}``, 529 ``overloaded_error``) and refuses what the
real API refuses (no ``anthropic-version``, no ``max_tokens``, a wrong
``x-api-key``, a system message among the turns). Everything ``ctx.llm``
promises holds the same: budgets and reservations, the cache, fallbacks
across providers of both kinds, the PII filter, the key kept out of every
file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from agentops.llm.providers import wire_format
from agentops.llm.providers.base import ChatRequest
from agentops.llm.routes import model_problems
from agentops.llm.tokens import bound_messages
from agentops.project.config import ProjectConfig
from fakeanthropic import FakeAnthropic, anthropic_error, error_in_200, message, overloaded
from fakellm import Behaviour, FakeLLM, reply, server_error
from leakscan import FAKE_SECRETS, scan_tree
from llmagent import ASKER, agent_toml, events, result_of, run, spends
from suite import AGENTOPS, cron_env

KEY = FAKE_SECRETS["FAKE_ANTHROPIC_KEY"]

IN_USD, OUT_USD = 3000.0, 15000.0
"""Claude's prices per million tokens, a thousandfold, so that cents show."""
READ_USD, WRITE_USD = 300.0, 3750.0
"""Its cache prices: a read a tenth of input, a write 1.25 times."""

SYSTEM = "You are the night shift's summariser. " * 20
"""A long, stable system prompt: what a cron agent sends every run."""


def cost(fresh: int, out: int, *, read: int = 0, write: int = 0) -> float:
    return (fresh * IN_USD + read * READ_USD + write * WRITE_USD + out * OUT_USD) / 1e6


def worst_case(messages: list[dict[str, str]], max_tokens: int = 100) -> float:
    return (bound_messages(messages) * IN_USD + max_tokens * OUT_USD) / 1e6


@pytest.fixture
def claude():
    with FakeAnthropic(key=KEY) as fake:
        yield fake


@pytest.fixture
def gpt():
    with FakeLLM() as fake:
        yield fake


def project_toml(claude, gpt, *, sonnet: str = "") -> str:
    return textwrap.dedent(
        f"""
        [providers.anthropic]
        kind = "anthropic"
        base_url = "{claude.base_url}"
        api_key_env = "FAKE_ANTHROPIC_KEY"

        [providers.openai]
        base_url = "{gpt.base_url}"
        api_key_env = "FAKE_OPENAI_KEY"

        [models.sonnet]
        provider = "anthropic"
        name = "claude-sonnet-x"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}
        cache_read_usd_per_mtok = {READ_USD}
        cache_write_usd_per_mtok = {WRITE_USD}
        {sonnet}

        [models.gpt]
        provider = "openai"
        name = "gpt-x"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}
        """
    )


def asker(project, claude, gpt, *, model="sonnet", fallbacks="[]", sonnet="", llm="", more=""):
    (project.home / "agentops.toml").write_text(project_toml(claude, gpt, sonnet=sonnet))
    project.add_agent(
        "asker", ASKER, agent_toml(model=model, fallbacks=fallbacks, llm=llm, more=more)
    )


# -- the request -----------------------------------------------------------------------


def test_a_request_is_what_the_messages_api_documents(project, clock, claude, gpt):
    """/v1/messages, x-api-key and anthropic-version, system apart, max_tokens, no Authorization."""
    asker(project, claude, gpt)
    claude.default = message("Quiet night.", usage=(30, 4))
    outcome, _ = run(project, clock, system="Be brief.", prompts=["What happened?"])
    assert outcome.exit_code == 0, outcome.message
    (asked,) = claude.requests
    assert asked.path == "/v1/messages"
    headers = {name.lower(): value for name, value in asked.headers.items()}
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert asked.body == {
        "model": "claude-sonnet-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "What happened?"}],
        "system": "Be brief.",
    }
    (got,) = result_of(project)["replies"]
    assert (got["text"], got["finish_reason"], got["raw_finish_reason"]) == (
        "Quiet night.",
        "stop",
        "end_turn",
    )
    assert gpt.requests == []


def test_a_schema_goes_as_output_config_and_reasoning_effort_as_its_effort(
    project, clock, claude, gpt
):
    """schema=: output_config.format, a closed json_schema; reasoning_effort: its effort."""
    asker(project, claude, gpt, sonnet='reasoning_effort = "medium"')
    claude.default = message('{"answer": "yes"}')
    outcome, _ = run(project, clock, structured=True)
    assert outcome.exit_code == 0, outcome.message
    (asked,) = claude.requests
    assert asked.body["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "additionalProperties": False,
                "properties": {"answer": {"title": "Answer", "type": "string"}},
                "required": ["answer"],
                "title": "Answer",
                "type": "object",
            },
        },
        "effort": "medium",
    }
    assert "JSON Schema" in asked.body["system"], "the schema is asked for in words too"
    assert result_of(project)["replies"][0]["parsed"] == {"answer": "yes"}


def test_a_model_that_refuses_output_config_is_asked_in_words(project, clock, claude, gpt):
    """A 400 about output_config.format: asked again without it, and so for the run."""
    asker(project, claude, gpt)
    claude.script(
        anthropic_error(
            400,
            "invalid_request_error",
            "output_config.format: structured outputs are not supported for this model",
        ),
        message('{"answer": "yes"}'),
        message('{"answer": "again"}'),
    )
    outcome, _ = run(project, clock, structured=True, prompts=["a", "b"])
    assert outcome.exit_code == 0, outcome.message
    assert ["output_config" in r.body for r in claude.requests] == [True, False, False]
    (learned,) = events(project, "llm.structured_fallback")
    assert (learned["structured"], learned["to"]) == ("json_schema", "json_object")
    assert [r["parsed"] for r in result_of(project)["replies"]] == [
        {"answer": "yes"},
        {"answer": "again"},
    ]


def test_a_cached_system_prompt_is_marked_and_its_cache_tokens_priced_per_model(
    project, clock, claude, gpt
):
    """cache_system: the system block marked ephemeral; a write then a read, each at its price."""
    asker(project, claude, gpt)
    claude.script(
        message("first", usage=(5, 3), cache_write=400),
        message("second", usage=(5, 3), cache_read=400),
    )
    outcome, _ = run(project, clock, system=SYSTEM, prompts=["a", "b"], cache_system=True)
    assert outcome.exit_code == 0, outcome.message
    assert claude.requests[0].body["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    first, second = result_of(project)["replies"]
    assert (first["tokens_in"], first["tokens_cache_write"], first["tokens_cached"]) == (
        405,
        400,
        0,
    )
    assert (second["tokens_in"], second["tokens_cached"], second["tokens_cache_write"]) == (
        405,
        400,
        0,
    )
    assert spends(project) == [
        pytest.approx(cost(5, 3, write=400)),
        pytest.approx(cost(5, 3, read=400)),
    ]
    calls = events(project, "llm.call")
    assert (calls[0]["tokens_cache_write"], calls[1]["tokens_cached"]) == (400, 400)
    # The worst case holds a cache write at its price: the dearest a prompt token can be.
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "a"}]
    reserved = events(project, "budget.reserved")[0]["usd"]
    assert reserved == pytest.approx((bound_messages(messages) * WRITE_USD + 100 * OUT_USD) / 1e6)


# -- the reply -------------------------------------------------------------------------


def test_a_reply_cut_at_max_tokens_is_truncated(project, clock, claude, gpt):
    """stop_reason max_tokens: the text, truncated, finish_reason length (raw max_tokens)."""
    asker(project, claude, gpt)
    claude.default = message("The night was", usage=(30, 100), stop_reason="max_tokens")
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["truncated"], got["finish_reason"], got["raw_finish_reason"]) == (
        True,
        "length",
        "max_tokens",
    )
    (cut,) = events(project, "llm.truncated")
    assert cut["reason"] == "was cut short at the output limit (finish_reason max_tokens)"


def test_a_refusal_raises_reply_refused_with_its_explanation(project, clock, claude, gpt):
    """stop_reason refusal with stop_details: ReplyRefused says why; its usage is paid."""
    asker(project, claude, gpt)
    claude.default = message(
        "Hello..",
        usage=(12, 2),
        stop_reason="refusal",
        stop_details={
            "type": "refusal",
            "category": "cyber",
            "explanation": "This request was declined because it could enable cyber harm.",
        },
    )
    outcome, _ = run(project, clock, catch=True)
    assert outcome.exit_code == 0, outcome.message
    result = result_of(project)
    assert result["refusal"] == "This request was declined because it could enable cyber harm."
    assert result["error"].startswith("ReplyRefused: sonnet refused to answer: This request")
    assert spends(project) == [pytest.approx(cost(12, 2))]

    claude.default = message(None, usage=(12, 0), stop_reason="refusal")
    run(project, clock, catch=True)
    assert result_of(project)["refusal"] == "the model declined to answer (stop_reason refusal)"


def test_text_blocks_are_joined_and_other_blocks_left_out(project, clock, claude, gpt):
    """thinking and text blocks: the text blocks, in order."""
    asker(project, claude, gpt)
    claude.default = message(
        blocks=[
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "All "},
            {"type": "text", "text": "quiet."},
        ]
    )
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert result_of(project)["replies"][0]["text"] == "All quiet."


# -- errors ----------------------------------------------------------------------------


def test_overloaded_529_is_retried_after_its_retry_after(project, clock, claude, gpt):
    """529 overloaded_error with retry-after: 4: waited, then answered; the error's words logged."""
    asker(project, claude, gpt)
    claude.script(overloaded(retry_after=4), message("fine"))
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert waits == [4.0]
    (error,) = events(project, "llm.error")
    assert (error["status"], error["category"], error["transient"]) == (529, "http_5xx", True)
    assert error["error"] == "HTTP 529: overloaded_error: Overloaded"
    (retry,) = events(project, "llm.retry")
    assert retry["wait_s"] == 4.0
    assert spends(project)[0] == 0.0


def test_an_error_in_a_200_is_the_kind_it_names(project, clock, claude, gpt):
    """{"type": "error"} in a 200: overloaded is retried; an invalid request is not."""
    asker(project, claude, gpt, fallbacks='["gpt"]')
    claude.script(error_in_200("overloaded_error", "Overloaded"), message("then"))
    outcome, waits = run(project, clock)
    assert (outcome.exit_code, len(waits)) == (0, 1)
    assert events(project, "llm.error")[0]["status"] == 529

    claude.script(error_in_200("invalid_request_error", "messages: bad turn order"))
    outcome, waits = run(project, clock)
    assert (outcome.exit_code, waits) == (0, [])
    assert gpt.models() == ["gpt-x"], "not retried: the next model"
    assert "messages: bad turn order" in events(project, "llm.model_failed")[-1]["error"]


def test_a_spend_limit_429_is_not_retried(project, clock, claude, gpt):
    """429 rate_limit_error whose details say the spend limit was reached: not waited for."""
    asker(project, claude, gpt, fallbacks='["gpt"]')
    limit = (
        b'{"type": "error", "error": {"type": "rate_limit_error", "message": '
        b'"You have reached your spend limit.", "details": {"error_code": '
        b'"enforced_spend_limit_reached"}}}'
    )
    claude.script(Behaviour(status=429, body=limit))
    outcome, waits = run(project, clock)
    assert (outcome.exit_code, waits) == (0, [])
    assert "spend limit" in events(project, "llm.model_failed")[0]["error"]
    assert gpt.models() == ["gpt-x"]


def test_a_bad_key_is_an_error_with_the_apis_words_on_stderr(project, run_agentops, claude, gpt):
    """401 authentication_error: exit 1, one line naming it; the key itself nowhere."""
    asker(project, claude, gpt)
    result = run_agentops(
        "run", "asker", env={**cron_env(project.home), "FAKE_ANTHROPIC_KEY": "sk-ant-wrong-key-01"}
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "HTTP 401 Unauthorized: authentication_error: invalid x-api-key" in lines[0]


def test_an_anthropic_reply_is_cached_like_any_other(project, clock, claude, gpt):
    """cache = "1h": the second run's same request is answered from the cache, for nothing."""
    asker(project, claude, gpt, llm='cache = "1h"')
    claude.script(message("kept", usage=(30, 6), cache_read=10))
    assert run(project, clock)[0].exit_code == 0
    clock.advance(minutes=5)
    assert run(project, clock)[0].exit_code == 0
    assert len(claude.requests) == 1
    (got,) = result_of(project)["replies"]
    assert (got["text"], got["cached"], got["cost_usd"], got["tokens_cached"]) == (
        "kept",
        True,
        0.0,
        10,
    )
    metrics = project.state("asker")["metrics"]
    assert metrics["llm_usd_saved"] == pytest.approx(cost(30, 6, read=10))


# -- across providers, and the key ------------------------------------------------------


def test_fallback_goes_from_openai_to_anthropic_and_back(project, clock, claude, gpt):
    """gpt fails, sonnet answers; then sonnet is overloaded, gpt answers: each paid as it said."""
    asker(project, claude, gpt, model="gpt", fallbacks='["sonnet"]')
    gpt.script(server_error(500), server_error(500), model="gpt-x")
    claude.script(message("from claude", usage=(20, 8)))
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert result_of(project)["replies"][0]["model"] == "sonnet"
    assert spends(project) == [0.0, 0.0, pytest.approx(cost(20, 8))]

    project.add_agent("asker", ASKER, agent_toml(model="sonnet", fallbacks='["gpt"]'))
    claude.script(overloaded(), overloaded())
    gpt.script(reply("from gpt", usage=(10, 5)), model="gpt-x")
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["model"], got["text"]) == ("gpt", "from gpt")
    assert len(waits) == 1
    assert spends(project)[3:] == [0.0, 0.0, pytest.approx(cost(10, 5))]
    assert [e["model"] for e in events(project, "llm.model_failed")] == ["gpt", "sonnet"]


def test_the_anthropic_key_reaches_no_file_whatever_the_reply_says(project, clock, claude, gpt):
    """A reply and an error echoing the key, bodies logged: [REDACTED] in every file."""
    asker(project, claude, gpt, llm='log_bodies = true\ncache = "1h"', more='[guard]\npii = "off"')
    claude.script(
        anthropic_error(400, "invalid_request_error", f"bad key {KEY} in the prompt"),
    )
    outcome, _ = run(project, clock, prompts=[f"is {KEY} still valid?"], catch=True)
    assert outcome.exit_code == 0, outcome.message
    claude.script(message(f"the key you sent is {KEY}"))
    outcome, _ = run(project, clock, prompts=[f"is {KEY} still valid?"])
    assert outcome.exit_code == 0, outcome.message
    assert result_of(project)["replies"][0]["text"] == "the key you sent is [REDACTED]"
    for directory in ("logs", "state"):
        assert scan_tree(project.home / directory) == []


def test_a_reservation_survives_kill_9_mid_request(project, run_agentops, claude, gpt):
    """SIGKILL while the Messages API has not answered: the next run finds the worst case spent."""
    asker(project, claude, gpt)
    claude.script(replace(message("late"), stall_s=60))
    proc = subprocess.Popen(
        [str(AGENTOPS), "--home", str(project.home), "run", "asker"],
        env=cron_env(project.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert claude.wait_for(1, timeout_s=60), "the request never arrived"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert run_agentops("run", "asker").returncode == 0
    worst = worst_case([{"role": "user", "content": "hello"}])
    assert spends(project) == [pytest.approx(worst), pytest.approx(cost(20, 8))]


# -- the format alone ------------------------------------------------------------------


def test_base_url_with_or_without_v1_reaches_v1_messages():
    """https://api.anthropic.com, or one ending in /v1: the same endpoint."""
    wire = wire_format("anthropic")
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "x"}], max_tokens=5)
    for base in ("https://api.anthropic.com", "https://api.anthropic.com/", "https://gw/v1"):
        endpoint = SimpleNamespace(
            base_url=base, api_key=None, token_param="max_tokens", reasoning_effort=None
        )
        built = wire.build(request, endpoint)
        assert built.url.endswith("/v1/messages")
        assert "x-api-key" not in built.headers
    assert wire.error(httpx.Response(200, content=message("error-free").body)) is None


def test_token_param_is_a_problem_of_an_anthropic_model():
    """max_completion_tokens on an Anthropic model: found by check, before anything is sent."""
    config = ProjectConfig.model_validate(
        {
            "providers": {"a": {"base_url": "http://h", "kind": "anthropic"}},
            "models": {"m": {"provider": "a", "name": "m", "token_param": "max_completion_tokens"}},
        }
    )
    assert model_problems("m", config, {}, capped=False) == [
        (
            "[llm] m: token_param 'max_completion_tokens' is for OpenAI-compatible models "
            "(Anthropic's API takes max_tokens)"
        )
    ]
