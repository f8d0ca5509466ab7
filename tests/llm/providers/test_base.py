"""The provider seam: wire formats by kind, OpenAI's as it always was, and a toy one of ours.

The toy format (:class:`ToyWire`) shares nothing with OpenAI's: another path,
another key header, other field names, and errors it reads from its own body,
even in a 200. Registered from here, without editing agentops, it serves
``ctx.llm`` in real runs against a loopback server: money reserved and
settled against a USD cap, the cache, fallback to an OpenAI-compatible model,
and retries decided by its reading of an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import llmagent
from agentops.llm.providers import DEFAULT_KIND, kinds, register, unregister, wire_format
from agentops.llm.providers.base import (
    ChatReply,
    Usage,
    WireError,
    WireRequest,
)
from agentops.llm.routes import model_problems, route
from agentops.llm.tokens import bound_messages
from agentops.project.config import ProjectConfig
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from fakellm import Behaviour, FakeLLM, reply, server_error
from leakscan import FAKE_SECRETS
from llmagent import IN_USD, OUT_USD, cost

OPENAI_KEY = FAKE_SECRETS["FAKE_OPENAI_KEY"]
TOY_KEY = FAKE_SECRETS["FAKE_GITHUB_TOKEN"]

# -- a wire format of our own ----------------------------------------------------------


class ToyWire:
    """A JSON protocol nothing like OpenAI's, spoken by the tests' toy server.

    ``POST {base_url}/toy/ask`` with ``X-Toy-Key``; ``{"engine", "say": [[role,
    text]], "up_to", "shape", "heat"?, "form"?}``; answered ``{"answer",
    "spent": [in, out], "why"}``, or ``{"fault": {"text", "again", "means",
    "wait"}}`` at any status, a 200 included.
    """

    def build(self, request, endpoint):
        body = {
            "engine": request.model,
            "say": [[m["role"], m["content"]] for m in request.messages],
            "up_to": request.max_tokens,
            "shape": "json" if request.want_json else "text",
        }
        if request.temperature is not None:
            body["heat"] = request.temperature
        if request.schema is not None:
            body["form"] = request.schema
        headers = {"X-Toy-Key": endpoint.api_key} if endpoint.api_key else {}
        return WireRequest(endpoint.base_url.rstrip("/") + "/toy/ask", headers, body)

    def error(self, response):
        try:
            fault = json.loads(response.content).get("fault")
        except (ValueError, AttributeError):
            fault = None
        if isinstance(fault, dict):
            return WireError(
                status=fault.get("means", response.status_code),
                transient=bool(fault.get("again")),
                message=fault.get("text"),
                retry_after_s=fault.get("wait"),
            )
        if 200 <= response.status_code < 300:
            return None
        return WireError(status=response.status_code, transient=response.status_code >= 500)

    def parse(self, response):
        payload = json.loads(response.content)
        answer = payload.get("answer") if isinstance(payload, dict) else None
        if not isinstance(answer, str):
            raise ValueError("the toy said nothing")
        spent_in, spent_out = payload.get("spent", (0, 0))
        return ChatReply(answer, Usage(spent_in, spent_out), finish_reason=payload.get("why"))


def toy_answer(text: str, *, spent: tuple[int, int] = (30, 12)) -> Behaviour:
    return Behaviour(body=json.dumps({"answer": text, "spent": spent, "why": "done"}).encode())


def toy_fault(text: str, *, again: bool, means: int, wait: float | None = None) -> Behaviour:
    """A fault in a 200, as some gateways send their errors."""
    fault = {"text": text, "again": again, "means": means, "wait": wait}
    return Behaviour(body=json.dumps({"fault": fault}).encode())


@pytest.fixture
def toy_kind():
    register("toy", ToyWire())
    yield "toy"
    unregister("toy")


@pytest.fixture
def toy(toy_kind):  # noqa: ARG001 - a toy server needs its kind registered
    with FakeLLM(toy_answer("toy default")) as fake:
        yield fake


@pytest.fixture
def openai():
    with FakeLLM() as fake:
        yield fake


# -- the registry ----------------------------------------------------------------------


@pytest.mark.usefixtures("toy_kind")
def test_a_provider_speaks_openai_unless_it_names_another_kind():
    """No kind: openai. A registered kind is known, routed and handed out; one registration."""
    config = ProjectConfig.model_validate(
        {
            "providers": {
                "plain": {"base_url": "http://127.0.0.1:9/v1"},
                "toy": {"base_url": "http://127.0.0.1:9", "kind": "toy"},
            },
            "models": {
                "a": {"provider": "plain", "name": "a"},
                "t": {"provider": "toy", "name": "t"},
            },
        }
    )
    assert config.providers["plain"].kind == DEFAULT_KIND == "openai"
    assert (route("a", config, {}).kind, route("t", config, {}).kind) == ("openai", "toy")
    assert kinds() == ["anthropic", "openai", "toy"]
    assert isinstance(wire_format("toy"), ToyWire)
    with pytest.raises(ValueError, match="already registered"):
        register("toy", ToyWire())
    with pytest.raises(ValueError, match="already registered"):
        register("openai", ToyWire())


def test_a_kind_once_unregistered_is_unknown_and_openai_stays():
    """unregister forgets a registered kind; the built-in ones cannot be forgotten."""
    register("passing", ToyWire())
    unregister("passing")
    unregister("openai")
    assert kinds() == ["anthropic", "openai"]
    with pytest.raises(ValueError, match="no wire format of kind 'passing'"):
        wire_format("passing")


UNKNOWN_KIND = """
[providers.mystery]
base_url = "http://127.0.0.1:9/v1"
kind = "carrier-pigeon"

[models.m]
provider = "mystery"
name = "m"
"""


def test_an_unknown_kind_is_found_by_check_and_stops_a_run_before_anything_is_sent(
    project, clock, invoke
):
    """An unknown kind: a problem of the model, in agentops check and before the run (78)."""
    (project.home / "agentops.toml").write_text(UNKNOWN_KIND)
    project.add_agent("writer", WRITER, '[llm]\nmodel = "m"\n')
    config = ProjectConfig.model_validate(
        {
            "providers": {"mystery": {"base_url": "http://x", "kind": "carrier-pigeon"}},
            "models": {"m": {"provider": "mystery", "name": "m"}},
        }
    )
    expected = (
        "[llm] m: provider 'mystery' is of kind 'carrier-pigeon', "
        "which agentops does not know (it knows anthropic, openai)"
    )
    assert model_problems("m", config, {}, capped=False) == [expected]
    with pytest.raises(ValueError, match="carrier-pigeon"):
        route("m", config, {})

    checked = invoke("check")
    assert checked.exit_code != 0
    assert expected in checked.output

    outcome = run_agent(AgentopsProject(project.home), "writer", environ={}, clock=clock)
    assert outcome.exit_code == 78
    assert expected in outcome.message


def test_importing_the_registry_imports_no_wire_format_and_no_httpx():
    """agentops check knows every kind without loading one: start-up stays lean."""
    code = textwrap.dedent(
        """
        import sys
        import agentops.llm.routes
        from agentops.llm.providers import kinds
        assert kinds() == ["anthropic", "openai"]
        print(sorted(m for m in sys.modules if m == "httpx" or "providers." in m))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# -- the OpenAI-compatible format, through the seam ------------------------------------


def test_openai_requests_are_byte_for_byte_what_they_were_and_errors_say_the_providers_word(
    project, clock, openai
):
    """The body's bytes and headers as before; a 503's line is its status and its body's words."""
    (project.home / "agentops.toml").write_text(toml(openai, openai))
    project.add_agent("writer", WRITER, llmagent.agent_toml(model="big", usd_per_day=1.0))
    openai.script(server_error(503), server_error(503), model="big")
    outcome, _ = run(project, clock, prompts=["héllo"])
    assert outcome.exit_code == 1
    first = openai.requests[0]
    assert (
        first.raw
        == (
            '{"model": "big", "messages": [{"role": "user", "content": "héllo"}], '
            '"max_tokens": 100}'
        ).encode()
    )
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    (failed,) = events(project, "llm.model_failed")
    assert failed["error"] == "HTTP 503 Service Unavailable: the model is unwell"


# -- the toy format in real runs -------------------------------------------------------

WRITER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    prompts: list[str] = ["hello"]
    structured: bool = False
    spend_first: float = 0.0

class Answer(BaseModel):
    answer: str

class Result(BaseModel):
    texts: list[str] = []
    models: list[str] = []
    parsed: list[dict] = []
    cached: list[bool] = []

def run(params: Params, ctx: Context) -> Result:
    if params.spend_first:
        ctx.spend(usd=params.spend_first)
    result = Result()
    for prompt in params.prompts:
        reply = ctx.llm.complete(prompt, schema=Answer if params.structured else None)
        result.texts.append(reply.text)
        result.models.append(reply.model)
        result.parsed.append(reply.parsed.model_dump() if reply.parsed else {})
        result.cached.append(reply.cached)
    return result
"""


def toml(toy, openai) -> str:
    return textwrap.dedent(
        f"""
        [providers.toy]
        kind = "toy"
        base_url = "{toy.base_url}"
        api_key_env = "FAKE_GITHUB_TOKEN"

        [providers.fake]
        base_url = "{openai.base_url}"
        api_key_env = "FAKE_OPENAI_KEY"

        [models.toy]
        provider = "toy"
        name = "toy-1"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}

        [models.big]
        provider = "fake"
        name = "big"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}
        """
    )


def toy_writer(project, toy, openai, *, llm: str = "") -> None:
    (project.home / "agentops.toml").write_text(toml(toy, openai))
    agent = llmagent.agent_toml(model="toy", fallbacks='["big"]', llm=llm, usd_per_day=1.0)
    project.add_agent("writer", WRITER, agent)


run, events, result_of, spends = llmagent.bound_to("writer")


def test_a_toy_wire_format_serves_ctx_llm_reserving_and_settling_under_a_usd_cap(
    project, clock, toy, openai
):
    """Its request on the wire; the worst case reserved, settled to the toy's own usage."""
    toy_writer(project, toy, openai)
    toy.script(toy_answer("toy says hi", spent=(30, 12)))
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (asked,) = toy.requests
    assert asked.path == "/v1/toy/ask"
    assert asked.headers["X-Toy-Key"] == TOY_KEY
    assert "Authorization" not in asked.headers
    assert asked.body == {
        "engine": "toy-1",
        "say": [["user", "hello"]],
        "up_to": 100,
        "shape": "text",
    }
    assert openai.requests == []
    assert (result_of(project)["texts"], result_of(project)["models"]) == (["toy says hi"], ["toy"])
    (reserved,) = events(project, "budget.reserved")
    assert reserved["usd"] == pytest.approx(cost(bound_messages(asked_messages()), 100))
    (settled,) = events(project, "budget.settled")
    assert (settled["usd"], settled["tokens"]) == (pytest.approx(cost(30, 12)), 42)
    (call,) = events(project, "llm.call")
    assert (call["model"], call["tokens_in"], call["tokens_out"]) == ("toy", 30, 12)
    metrics = project.state("writer")["metrics"]
    assert (metrics["llm_calls"], metrics["cost_usd"]) == (1, pytest.approx(cost(30, 12)))

    refused, _ = run(project, clock, spend_first=0.9)
    assert (refused.exit_code, refused.status) == (75, "budget_exceeded")
    assert len(toy.requests) == 1, "a call that could pass the cap is not sent"


def asked_messages():
    return [{"role": "user", "content": "hello"}]


def test_a_toy_reply_is_cached_like_any_other(project, clock, toy, openai):
    """cache = "1h": the second run's same request is answered from the cache, for nothing."""
    toy_writer(project, toy, openai, llm='cache = "1h"')
    toy.script(toy_answer("kept", spent=(40, 20)))
    assert run(project, clock)[0].exit_code == 0
    clock.advance(minutes=5)
    assert run(project, clock)[0].exit_code == 0
    assert len(toy.requests) == 1
    assert result_of(project)["cached"] == [True]
    assert result_of(project)["texts"] == ["kept"]
    metrics = project.state("writer")["metrics"]
    assert (metrics["llm_cache_hits"], metrics["llm_usd_saved"]) == (1, pytest.approx(cost(40, 20)))


def test_structured_output_reaches_the_toy_format_with_its_schema(project, clock, toy, openai):
    """schema=: the neutral request says JSON is wanted and carries the schema; parsed as usual."""
    toy_writer(project, toy, openai)
    toy.script(toy_answer('{"answer": "yes"}'))
    outcome, _ = run(project, clock, structured=True)
    assert outcome.exit_code == 0, outcome.message
    (asked,) = toy.requests
    assert asked.body["shape"] == "json"
    assert asked.body["form"]["properties"] == {"answer": {"title": "Answer", "type": "string"}}
    assert "JSON Schema" in asked.body["say"][0][1]
    assert result_of(project)["parsed"] == [{"answer": "yes"}]


def test_a_fault_the_toy_format_reads_as_final_hands_over_to_an_openai_model(
    project, clock, toy, openai
):
    """A 200 carrying a fault that says "not again": no retry, settled to 0, big answers."""
    toy_writer(project, toy, openai)
    toy.script(toy_fault("the toy engine is out of coal", again=False, means=400))
    openai.script(reply("big answers", usage=(10, 5)), model="big")
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert (len(toy.requests), openai.models()) == (1, ["big"])
    assert waits == []
    assert events(project, "llm.retry") == []
    (failed,) = events(project, "llm.model_failed")
    assert failed["model"] == "toy"
    assert failed["error"] == "an error in a 200 answer: the toy engine is out of coal"
    assert result_of(project)["models"] == ["big"]
    assert spends(project) == [0.0, pytest.approx(cost(10, 5))]


def test_a_fault_the_toy_format_reads_as_transient_is_retried_after_its_wait(
    project, clock, toy, openai
):
    """A fault meaning 503, "again" after 3s: the call waits 3s, then the toy answers."""
    toy_writer(project, toy, openai)
    toy.script(toy_fault("busy", again=True, means=503, wait=3), toy_answer("now then"))
    outcome, waits = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert waits == [3.0]
    assert (len(toy.requests), openai.requests) == (2, [])
    (retry,) = events(project, "llm.retry")
    assert (retry["model"], retry["category"], retry["wait_s"]) == ("toy", "http_5xx", 3.0)
    assert retry["error"] == "an error in a 200 answer: busy"
    assert result_of(project)["texts"] == ["now then"]
    assert spends(project) == [0.0, pytest.approx(cost(30, 12))]


def test_a_toy_answer_the_format_cannot_read_keeps_the_reservation(project, clock, toy, openai):
    """Garbled (no answer): it may have been billed, so the worst case stays; big answers."""
    toy_writer(project, toy, openai)
    toy.script(Behaviour(body=b'{"mumble": true}'))
    outcome, _ = run(project, clock)
    assert outcome.exit_code == 0, outcome.message
    (failed,) = events(project, "llm.model_failed")
    assert failed["error"] == "ValueError: the toy said nothing"
    assert spends(project) == [
        pytest.approx(cost(bound_messages(asked_messages()), 100)),
        pytest.approx(cost(10, 5)),
    ]
