"""The OpenAI-compatible format: what it sends, what servers answer, what the operator sees of it.

The requests it builds and the replies and errors it reads, in process; then
against :mod:`fakellm`, answering in the shapes OpenAI documents: error
bodies (JSON and plain text) and errors in a 200, a reply cut at the output
limit, filtered, empty, refused, asking for tools with no text, given as a
list of parts, usage in floats and with its cached and reasoning details,
``retry-after-ms``. One test (or more) per point of issue 16, each asserting
the lines the operator reads (the log, the one line on stderr) and what the
budget holds after.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import httpx
import pytest

from agentops._infra import http as agentops_http
from agentops.guards.failure import classify
from agentops.llm._send import category_of
from agentops.llm.providers import wire_format
from agentops.llm.providers._common import closed_schema, count, error_message, waited_s
from agentops.llm.providers.base import (
    ChatReply,
    ChatRequest,
    Usage,
)
from agentops.llm.routes import route
from agentops.project.config import ProjectConfig
from fakellm import (
    Behaviour,
    FakeLLM,
    error_in_200,
    openai_error,
    plain_error,
    rate_limited,
    reply,
)
from leakscan import FAKE_SECRETS, scan_tree
from llmagent import (
    ASKER,
    IN_USD,
    OUT_USD,
    agent_toml,
    cost,
    events,
    models_toml,
    result_of,
    run,
    spends,
    worst_case,
)

KEY = FAKE_SECRETS["FAKE_OPENAI_KEY"]

CACHED_USD = 100.0
"""Per million tokens read from the cache: $0.0001 a token (llmagent's prices for the rest)."""

UNSUPPORTED_MAX_TOKENS = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead."
)


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


def asker(project, server, *, fallbacks='["big"]', small="", big="", llm="", more="", head=""):
    (project.home / "agentops.toml").write_text(models_toml(server.base_url, small=small, big=big))
    project.add_agent(
        "asker",
        ASKER,
        agent_toml(model="small", fallbacks=fallbacks, llm=llm, more=more, head=head),
    )


def one_line(result, project):
    """The single stderr line of a run that failed."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentops: ")
    assert lines[0].endswith(f"(log: {project.log_path('asker')})")
    return lines[0]


# -- 1. the provider's word reaches the operator ---------------------------------------


def test_a_400s_message_reaches_llm_error_stderr_and_llm_unavailable(project, run_agentops, server):
    """A 400 saying a parameter is unsupported: its words everywhere, not retried, nothing paid."""
    asker(project, server, fallbacks="[]")
    server.default = openai_error(400, UNSUPPORTED_MAX_TOKENS, param="max_tokens")
    result = run_agentops("run", "asker")
    assert result.returncode == 1
    line = one_line(result, project)
    assert (
        "LLMUnavailable: every model failed: small: HTTP 400 Bad Request: "
        f'{UNSUPPORTED_MAX_TOKENS} (try token_param = "max_completion_tokens" in [models."small"])'
    ) in line
    assert "developer.mozilla.org" not in line
    assert len(server.requests) == 1, "a 400 is not retried"
    (error,) = events(project, "llm.error")
    assert (error["model"], error["status"], error["category"], error["transient"]) == (
        "small",
        400,
        "http_4xx",
        False,
    )
    assert UNSUPPORTED_MAX_TOKENS in error["error"]
    assert events(project, "llm.retry") == []
    assert spends(project) == [0.0], "an error answer is settled to nothing"


def test_a_plain_text_error_body_is_read_and_a_long_one_cut_short(project, clock, server):
    """A 500 of plain text: its words in llm.error and llm.retry; a page of text cut to 300."""
    asker(project, server, fallbacks="[]")
    server.script(plain_error(500, "Internal boom"), reply("recovered", usage=(10, 5)))
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert len(waits) == 1
    (error,) = events(project, "llm.error")
    assert error["error"] == "HTTP 500 Internal Server Error: Internal boom"
    assert (error["status"], error["transient"]) == (500, True)
    (retry,) = events(project, "llm.retry")
    assert retry["error"] == error["error"]
    assert spends(project) == [0.0, pytest.approx(cost(10, 5))]

    page = "<html><body>" + "bad gateway " * 100 + "</body></html>"
    server.script(plain_error(502, page), plain_error(502, page))
    outcome, _ = run(project, clock, catch=True)
    said = events(project, "llm.error")[-1]["error"]
    assert said.startswith("HTTP 502 Bad Gateway: <html><body>bad gateway bad gateway")
    assert said.endswith("…")
    assert len(said) == len("HTTP 502 Bad Gateway: ") + 300
    assert said in result_of(project)["error"]


def test_a_key_echoed_in_an_error_body_is_redacted_wherever_it_is_shown(
    project, run_agentops, server
):
    """A 401 repeating the key it was sent: [REDACTED] in the log, the state and stderr."""
    asker(project, server, fallbacks="[]")
    server.default = openai_error(
        401, f"Incorrect API key provided: {KEY}.", kind="invalid_request_error"
    )
    result = run_agentops("run", "asker")
    assert result.returncode == 1
    line = one_line(result, project)
    assert "HTTP 401 Unauthorized: Incorrect API key provided: [REDACTED]." in line
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    for directory in ("logs", "state"):
        assert scan_tree(project.home / directory) == []


# -- 2. the output limit's parameter, and reasoning effort, per model ------------------


def test_token_param_and_reasoning_effort_are_sent_as_the_model_says(project, clock, server):
    """token_param = "max_completion_tokens", reasoning_effort = "low": sent; max_tokens not."""
    asker(
        project,
        server,
        small='token_param = "max_completion_tokens"\nreasoning_effort = "low"',
    )
    outcome, _ = run(project, clock, prompts=["a"], model="small")
    assert outcome.exit_code == 0, outcome.message
    outcome, _ = run(project, clock, prompts=["b"], model="big")
    assert outcome.exit_code == 0, outcome.message
    small, big = server.requests
    assert small.body["max_completion_tokens"] == 100
    assert small.body["reasoning_effort"] == "low"
    assert "max_tokens" not in small.body
    assert big.body["max_tokens"] == 100
    assert "max_completion_tokens" not in big.body
    assert "reasoning_effort" not in big.body


# -- 3. a truncated reply is never silent ----------------------------------------------


def test_a_reply_cut_at_the_limit_comes_back_truncated_and_logged(project, clock, server):
    """finish_reason length: exit 0, the text kept, truncated, llm.truncated, and not cached."""
    asker(project, server, llm='cache = "1h"')
    server.default = reply("Half a sent", usage=(10, 100), finish_reason="length")
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (answer,) = result_of(project)["replies"]
    assert (answer["text"], answer["truncated"], answer["finish_reason"]) == (
        "Half a sent",
        True,
        "length",
    )
    assert answer["raw_finish_reason"] == "length"
    (cut,) = events(project, "llm.truncated")
    assert (cut["model"], cut["finish_reason"], cut["chars"]) == ("small", "length", 11)
    assert cut["reason"] == "was cut short at the output limit (finish_reason length)"
    assert events(project, "llm.call")[0]["finish_reason"] == "length"
    assert spends(project) == [pytest.approx(cost(10, 100))]
    run(project, clock)
    assert len(server.requests) == 2, "a truncated reply is not reused from the cache"


@pytest.mark.parametrize(
    ("answer", "finish", "reason"),
    [
        (reply("", finish_reason="content_filter"), "content_filter", "withheld"),
        (reply("   ", finish_reason="stop"), "stop", "is empty"),
        (reply(None, finish_reason="stop"), "stop", "is empty"),
    ],
    ids=["content-filter", "blank", "null"],
)
def test_a_filtered_or_empty_reply_is_truncated_too(project, clock, server, answer, finish, reason):
    """content_filter, or no text at all: returned truncated, logged, never taken as an answer."""
    asker(project, server)
    server.default = answer
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["truncated"], got["finish_reason"]) == (True, finish)
    (cut,) = events(project, "llm.truncated")
    assert reason in cut["reason"]


def test_allow_truncated_false_makes_a_cut_reply_a_failure_of_the_model(project, clock, server):
    """allow_truncated=False: small's cut reply hands over to big, whose whole reply wins."""
    asker(project, server)
    server.script(reply("Half", usage=(10, 100), finish_reason="length"), model="small")
    server.script(reply("Whole.", usage=(10, 5)), model="big")
    outcome, _ = run(project, clock, allow_truncated=False)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["model"], got["text"], got["truncated"]) == ("big", "Whole.", False)
    (failed,) = events(project, "llm.model_failed")
    assert failed["error"] == (
        "the reply was cut short at the output limit (finish_reason length), "
        "and allow_truncated is False"
    )
    assert spends(project) == [pytest.approx(cost(10, 100)), pytest.approx(cost(10, 5))]


def test_with_a_schema_a_cut_reply_is_asked_again_then_the_next_model(project, clock, server):
    """A truncated JSON reply failed validation: re-asked (told why), then big answers."""
    asker(project, server)
    cut = reply('{"answer": "ye', usage=(10, 100), finish_reason="length")
    server.script(cut, cut, model="small")
    server.script(reply('{"answer": "yes"}'), model="big")
    outcome, _ = run(project, clock, structured=True)
    assert outcome.exit_code == 0, outcome.message
    assert server.models() == ["small", "small", "big"]
    reasked = server.requests[1].messages[-1]["content"]
    assert "cut short at the output limit" in reasked
    malformed = events(project, "llm.malformed")
    assert [m["ask"] for m in malformed] == [1, 2]
    assert result_of(project)["replies"][0]["parsed"] == {"answer": "yes"}


# -- 4. a reply whose content is null or a list ----------------------------------------


def test_a_refusal_raises_reply_refused_and_its_usage_settles_the_reservation(
    project, clock, server
):
    """content null, a refusal: ReplyRefused with its words, llm.call; its 14 tokens paid."""
    asker(project, server)
    server.default = reply(
        None, refusal="I can't help with that.", usage=(11, 3), finish_reason="stop"
    )
    outcome, _ = run(project, clock, catch=True)
    assert outcome.exit_code == 0, outcome.message
    result = result_of(project)
    assert result["error"] == "ReplyRefused: small refused to answer: I can't help with that."
    assert (result["refusal"], result["refused_tokens"]) == ("I can't help with that.", 14)
    assert server.models() == ["small"], "a refusal is the agent's to handle, not big's"
    (call,) = events(project, "llm.call")
    assert (call["tokens_in"], call["tokens_out"], call["finish_reason"]) == (11, 3, "refusal")
    (refused,) = events(project, "llm.refused")
    assert refused["refusal"] == "I can't help with that."
    assert spends(project) == [pytest.approx(cost(11, 3))]


def test_a_refusal_uncaught_fails_the_run_with_one_line(project, run_agentops, server):
    """Uncaught, ReplyRefused ends the run (exit 1) with the refusal on stderr."""
    asker(project, server)
    server.default = reply(None, refusal="Not something I can do.")
    result = run_agentops("run", "asker")
    assert result.returncode == 1
    assert "ReplyRefused: small refused to answer: Not something I can do." in one_line(
        result, project
    )


def test_tool_calls_with_null_content_come_back_without_text(project, clock, server):
    """finish_reason tool_calls and no content: text None, finish tool_calls, truncated (empty)."""
    asker(project, server)
    server.default = reply(
        None,
        finish_reason="tool_calls",
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"}'},
            }
        ],
    )
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["text"], got["finish_reason"], got["truncated"]) == (None, "tool_calls", True)


def test_content_given_as_a_list_of_parts_is_joined(project, clock, server):
    """content: [{"type": "text", "text": ...}, ...]: one text."""
    asker(project, server)
    server.default = reply([{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}])
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert result_of(project)["replies"][0]["text"] == "Hello, world"


def test_a_reasoning_model_that_spent_its_budget_thinking_is_paid_and_says_so(
    project, clock, server
):
    """content null, length, 100 reasoning tokens: truncated, tokens_reasoning, usage settled."""
    asker(project, server)
    server.default = reply(None, usage=(9, 100), finish_reason="length", reasoning=100)
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["text"], got["truncated"], got["tokens_reasoning"]) == (None, True, 100)
    (call,) = events(project, "llm.call")
    assert call["tokens_reasoning"] == 100
    assert spends(project) == [pytest.approx(cost(9, 100))]


def test_an_unreadable_reply_is_paid_at_its_usage_and_only_without_one_in_full(
    project, clock, server
):
    """No choices but a usage: settled to it; garbled with none: the reservation stands."""
    asker(project, server)
    no_choices = (
        b'{"object": "chat.completion", "usage": {"prompt_tokens": 12, "completion_tokens": 2}}'
    )
    server.script(Behaviour(body=no_choices), Behaviour(body=b'{"what": 1}'), model="small")
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert server.models() == ["small", "big"]
    (failed,) = events(project, "llm.model_failed")
    assert failed["error"] == "UnreadableReply: the reply has no choices[0].message"
    assert spends(project)[0] == pytest.approx(cost(12, 2))

    outcome, _ = run(project, clock)  # the second answer: no usage said at all
    assert spends(project)[2] == pytest.approx(worst_case())


# -- 5. a 200 carrying an error ---------------------------------------------------------


def test_an_error_in_a_200_is_the_error_it_names(project, clock, server):
    """{"error": {code 503}} in a 200: transient, retried; an invalid request in one: not."""
    asker(project, server)
    server.script(error_in_200("upstream overloaded", code=503), reply("now"), model="small")
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert len(waits) == 1
    (error,) = events(project, "llm.error")
    assert (error["status"], error["transient"]) == (503, True)
    assert error["error"] == "an error in a 200 answer: upstream overloaded"
    assert result_of(project)["replies"][0]["text"] == "now"

    server.script(error_in_200("bad messages", kind="invalid_request_error"), model="small")
    outcome, waits = run(project, clock)
    assert (outcome.exit_code, waits) == (0, [])
    assert server.models()[-2:] == ["small", "big"], "not retried: the next model"
    assert events(project, "llm.error")[-1]["status"] == 400


def test_a_429_out_of_quota_is_not_retried(project, clock, server):
    """insufficient_quota: waiting will not pay the bill; the next model is asked at once."""
    asker(project, server)
    server.script(
        openai_error(429, "You exceeded your current quota.", code="insufficient_quota"),
        model="small",
    )
    outcome, waits = run(project, clock)
    assert (outcome.exit_code, waits) == (0, [])
    assert server.models() == ["small", "big"]
    assert "You exceeded your current quota." in events(project, "llm.model_failed")[0]["error"]


# -- 6. latency is the request alone; every request has its http.request line ---------


def test_latency_ms_does_not_count_making_the_http_client(project, clock, server, monkeypatch):
    """The client made as the first call starts takes 1,000 s here: latency_ms is not that."""
    made = agentops_http.make_http_client
    real = agentops_http.time.perf_counter
    late = [0.0]

    def slow_to_make(*args, **kwargs):
        late[0] += 1000.0  # as if making the client took a thousand seconds
        return made(*args, **kwargs)

    monkeypatch.setattr(agentops_http, "make_http_client", slow_to_make)
    monkeypatch.setattr("agentops.llm._send.time.perf_counter", lambda: real() + late[0])
    asker(project, server)
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert late == [1000.0], "the client was made, once"
    (got,) = result_of(project)["replies"]
    assert 0 < got["latency_ms"] < 1_000_000
    assert events(project, "llm.call")[0]["latency_ms"] == got["latency_ms"]


def test_a_request_that_got_no_response_has_its_http_request_line(project, clock, server):
    """A refused connection: http.error and http.request (status null), for each attempt."""
    asker(project, server, fallbacks="[]")
    with FakeLLM() as gone:
        url = gone.base_url
    (project.home / "agentops.toml").write_text(models_toml(url))
    outcome, _ = run(project, clock, catch=True)
    assert outcome.exit_code == 0, outcome.message
    requests = events(project, "http.request")
    assert [r["status"] for r in requests] == [None, None]
    assert all(
        r["url"] == f"{url}/chat/completions" and "ConnectError" in r["error"] for r in requests
    )
    assert len(events(project, "http.error")) == 2
    assert spends(project) == [0.0, 0.0]


# -- 7. structured output sends the schema ---------------------------------------------


def test_a_model_that_refuses_json_schema_is_asked_with_json_object_for_the_rest_of_the_run(
    project, clock, server
):
    """A 400 about response_format: the same call asks json_object; the next call starts there."""
    asker(project, server)
    server.script(
        openai_error(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
            "with this model.",
            param="response_format",
        ),
        reply('{"answer": "one"}'),
        reply('{"answer": "two"}'),
        model="small",
    )
    outcome, _ = run(project, clock, structured=True, prompts=["a", "b"])
    assert outcome.exit_code == 0, outcome.message
    formats = [r.body["response_format"]["type"] for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    (learned,) = events(project, "llm.structured_fallback")
    assert (learned["model"], learned["structured"], learned["to"]) == (
        "small",
        "json_schema",
        "json_object",
    )
    assert "'response_format' of type 'json_schema' is not supported" in learned["error"]
    assert [r["parsed"] for r in result_of(project)["replies"]] == [
        {"answer": "one"},
        {"answer": "two"},
    ]
    assert events(project, "llm.model_failed") == []
    assert spends(project) == [0.0, pytest.approx(cost(10, 5)), pytest.approx(cost(10, 5))]


def test_structured_prompt_sends_no_response_format_and_a_lenient_schema_is_not_strict(
    project, clock, server
):
    """structured = "prompt": words alone; a model with defaults: json_schema, strict false."""
    asker(project, server, small='structured = "prompt"')
    server.default = reply('{"answer": "yes"}')
    assert run(project, clock, structured=True)[0].exit_code == 0
    assert "response_format" not in server.requests[0].body
    assert run(project, clock, structured=True, lenient=True, model="big")[0].exit_code == 0
    sent = server.requests[1].body["response_format"]["json_schema"]
    assert (sent["name"], sent["strict"]) == ("Lenient", False)
    assert sent["schema"]["additionalProperties"] is False


def test_json_mode_false_and_another_structured_disagree(project, invoke, server):
    """json_mode = false beside structured = "json_schema": a configuration error, one line."""
    asker(project, server, small='json_mode = false\nstructured = "json_schema"')
    checked = invoke("check")
    assert checked.exit_code == 78
    assert "json_mode = false and structured = 'json_schema' disagree" in checked.output


# -- and: float usage, cached tokens, retry-after-ms, a wait not taken -----------------


def test_float_usage_and_cached_tokens_are_counted_and_priced(project, clock, server):
    """usage 12.0 / 7.0 with 8.0 of the prompt cached: 19 tokens, the cached 8 at their price."""
    asker(project, server, small=f"cache_read_usd_per_mtok = {CACHED_USD}")
    server.default = reply("fine", usage=(12.0, 7.0), cached=8.0)
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (got,) = result_of(project)["replies"]
    assert (got["tokens_in"], got["tokens_out"], got["tokens_cached"]) == (12, 7, 8)
    expected = (4 * IN_USD + 8 * CACHED_USD + 7 * OUT_USD) / 1e6
    assert got["cost_usd"] == pytest.approx(expected)
    assert spends(project) == [pytest.approx(expected)]
    assert project.state("asker")["metrics"]["tokens"] == 19


def test_retry_after_ms_is_honoured(project, clock, server):
    """429 with retry-after-ms: 1500 (and Retry-After: 9): the call waits 1.5 s."""
    asker(project, server)
    server.script(rate_limited(retry_after=9, retry_after_ms=1500), model="small")
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert waits == [1.5]
    (retry,) = events(project, "llm.retry")
    assert retry["wait_s"] == 1.5


def test_a_wait_past_the_run_is_neither_taken_nor_announced(project, clock, server):
    """timeout 30s, Retry-After 120: no llm.retry line for a wait that will not happen."""
    asker(project, server, head='timeout = "30s"', more="")
    toml = project.home / "agents" / "asker" / "agent.toml"
    toml.write_text(toml.read_text().replace('max = "1m"', 'max = "5m"'))
    server.script(rate_limited(retry_after=120), model="small")
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert waits == []
    assert events(project, "llm.retry") == []
    assert len(events(project, "llm.error")) == 1
    assert "would wait 120s" in events(project, "llm.model_failed")[0]["error"]


# -- the readings every format shares --------------------------------------------------


def test_counts_waits_and_messages_are_read_whatever_their_shape():
    """Floats rounded up, junk is 0; retry-after-ms before Retry-After; messages from 4 shapes."""
    assert [count(v) for v in (12, 12.0, 12.2, True, "12", None, -3, float("inf"))] == [
        12,
        12,
        13,
        0,
        0,
        0,
        0,
        0,
    ]
    assert waited_s(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    assert waited_s(httpx.Headers({"retry-after-ms": "soon", "Retry-After": "9"})) == 9.0
    assert waited_s(httpx.Headers({})) is None
    for body in (
        {"error": {"message": "a"}},
        {"error": "a"},
        {"message": "a"},
        {"detail": "a"},
        {"object": "error", "message": "a", "code": 400},
    ):
        assert error_message(body, b"") == "a"
    assert error_message(None, b"  plain\n text ") == "plain text"
    assert error_message({"error": {"code": 1}}, b"") is None


def test_a_schema_is_closed_and_strict_only_when_every_property_is_required():
    """additionalProperties false on every object, nested and in $defs; strict when all required."""
    schema = {
        "type": "object",
        "properties": {
            "inner": {"$ref": "#/$defs/Inner"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["inner", "tags"],
        "$defs": {
            "Inner": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        },
    }
    closed, strict = closed_schema(schema)
    assert strict
    assert closed["additionalProperties"] is False
    assert closed["$defs"]["Inner"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["tags"]
    assert "additionalProperties" not in schema, "the schema given is not changed"
    optional = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    assert closed_schema(optional)[1] is False
    named = {
        "type": "object",
        "properties": {"properties": {"type": "string"}},
        "required": ["properties"],
    }
    assert closed_schema(named)[0]["properties"] == {"properties": {"type": "string"}}


def test_the_openai_format_reads_each_documented_reply_shape():
    """Refusal, tool calls, parts, reasoning details, unknown finish reasons, an error in a 200."""
    wire = wire_format("openai")

    def parse(behaviour):
        return wire.parse(httpx.Response(200, content=behaviour.body))

    refused = parse(reply(None, refusal="No."))
    assert (refused.text, refused.refusal, refused.finish_reason) == (None, "No.", "refusal")
    calls = parse(reply(None, finish_reason="tool_calls", tool_calls=[]))
    assert (calls.text, calls.finish_reason) == (None, "tool_calls")
    odd = parse(reply("x", finish_reason="eos"))
    assert (odd.finish_reason, odd.raw_finish_reason) == ("stop", "eos")
    other = parse(reply("x", finish_reason="abort"))
    assert (other.finish_reason, other.raw_finish_reason) == ("other", "abort")
    detailed = parse(reply("x", usage=(10, 5), cached=20, reasoning=3))
    assert (detailed.usage.cached_tokens, detailed.usage.reasoning_tokens) == (10, 3)
    answered = httpx.Response(200, content=reply("the word error is fine").body)
    assert wire.error(answered) is None
    request = ChatRequest(model="m", messages=[], max_tokens=1)
    assert request.want_json is False


# -- requests built, replies and errors read ------------------------------------------

ENDPOINT = SimpleNamespace(
    base_url="http://h/v1", api_key=None, token_param="max_tokens", reasoning_effort=None
)
"""An Endpoint that is no route: a format asks nothing else of one."""


def test_the_openai_format_builds_what_the_client_always_sent():
    """POST base_url/chat/completions, a bearer key, model, messages, max_tokens; more if set."""
    wire = wire_format("openai")
    config = ProjectConfig.model_validate(
        {
            "providers": {"p": {"base_url": "http://h/v1/", "api_key_env": "K"}},
            "models": {"m": {"provider": "p", "name": "m-1"}},
        }
    )
    endpoint = route("m", config, {"K": KEY})
    messages = [{"role": "user", "content": "héllo"}]
    plain = wire.build(ChatRequest(model="m-1", messages=messages, max_tokens=5), endpoint)
    assert plain.url == "http://h/v1/chat/completions"
    assert plain.headers == {"Authorization": f"Bearer {KEY}"}
    assert plain.body == {"model": "m-1", "messages": messages, "max_tokens": 5}
    full = wire.build(
        ChatRequest(
            model="m-1",
            messages=messages,
            max_tokens=5,
            temperature=0.5,
            structured="json_object",
            schema={"type": "object"},
        ),
        ENDPOINT,  # any Endpoint will do
    )
    assert full.headers == {}, "no key, no Authorization"
    assert list(full.body) == ["model", "messages", "max_tokens", "temperature", "response_format"]
    assert full.body["response_format"] == {"type": "json_object"}


def test_the_openai_format_reads_text_usage_and_finish_reason():
    """choices[0].message.content and usage; missing usage is 0; the finish reason kept raw."""
    wire = wire_format("openai")
    read = wire.parse(httpx.Response(200, content=reply("hi", usage=(3, 4)).body))
    assert read == ChatReply("hi", Usage(3, 4), finish_reason="stop", raw_finish_reason="stop")
    bare = wire.parse(httpx.Response(200, json={"choices": [{"message": {"content": "x"}}]}))
    assert bare == ChatReply("x", Usage(0, 0), finish_reason=None)
    for body, error in [
        ({"choices": []}, "the reply has no choices[0].message"),
        ({"choices": [{"message": {"content": 7}}]}, "the reply's content is not text"),
    ]:
        with pytest.raises(ValueError, match=re.escape(error)):
            wire.parse(httpx.Response(200, json=body))


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 408, 409, 422, 429, 500, 503, 529])
def test_the_openai_format_classifies_an_error_as_any_http_call_is(status):
    """Any status but 2xx is an error: transient, waited and named as guards.failure says."""
    wire = wire_format("openai")
    request = httpx.Request("POST", "http://h/v1/chat/completions")
    response = httpx.Response(
        status,
        headers={"Retry-After": "7"},
        content=b'{"error": {"message": "no"}}',
        request=request,
    )
    error = wire.error(response)
    expected = classify(httpx.HTTPStatusError("", request=request, response=response))
    assert error is not None
    assert (category_of(error.status), error.transient, error.retry_after_s) == (
        expected.category,
        expected.transient,
        expected.retry_after_s,
    )
    assert error.message == "no", "the body's message is read"
    assert wire.error(httpx.Response(200, content=b"{}")) is None
