"""``ctx.llm.run(prompt, tools=[...])``: the tool loop, against fakes of both wire formats.

Each test is run against the OpenAI-compatible fake (``tool_calls`` whose
``function.arguments`` is a JSON string, ``finish_reason`` ``tool_calls``,
results as ``role: tool`` messages) and the Anthropic fake (``tool_use``
blocks, ``stop_reason`` ``tool_use``, results as ``tool_result`` blocks in
one user message), scripted turn by turn.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import textwrap
import time
from types import SimpleNamespace

import httpx
import pytest

from agentops.llm.providers import wire_format
from agentops.llm.providers.base import ChatRequest, ToolSpec
from agentops.ops.admin import reject_held
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import approve_held
from fakeanthropic import FakeAnthropic, message
from fakellm import Behaviour, FakeLLM, reply, stall
from llmagent import events, result_of, run
from suite import AGENTOPS, cron_env

TOOLER = '''
import json
import os
import signal
import time
from pydantic import BaseModel
from agentops import Context, tool

class Params(BaseModel):
    prompt: str = "triage"
    structured: bool = False
    max_steps: int = 8
    hide: bool = False

class Verdict(BaseModel):
    verdict: str

class Result(BaseModel):
    text: str | None = None
    parsed: dict | None = None
    tokens_in: int = 0

def _effect(ctx, what):
    with open(ctx.home / "effects.jsonl", "a") as out:
        out.write(json.dumps(what) + "\\n")

def search_orders(query: str, limit: int = 3) -> list[dict]:
    """Find orders matching query. Use it before any refund."""
    return [{"order": f"o-{query}", "amount": 12.5}][:limit]

def _die_if(ctx, moment):
    # A test's kill switch: the process dies here, SIGKILL, once.
    switch = ctx.home / "kill-at"
    if moment == "before" and switch.exists() and switch.read_text() == "random":
        # The test kills from outside at a random moment from here on.
        (ctx.home / "tool-entered").write_text("yes")
        time.sleep(0.002)
        return
    if switch.exists() and switch.read_text() == moment:
        switch.unlink()
        if moment == "outside":  # the test kills it from outside while it waits
            (ctx.home / "effect-done").write_text("yes")
            time.sleep(600)
        os.kill(os.getpid(), signal.SIGKILL)

@tool(effect=True, key="order_id")
def refund(order_id: str, amount: float, ctx: Context) -> dict:
    """Refund an order, once. Use it only for an order search_orders found."""
    _die_if(ctx, "before")
    _effect(ctx, {"refund": order_id, "amount": amount})
    _die_if(ctx, "after")
    _die_if(ctx, "outside")
    return {"refunded": order_id}

def reconcile(action, key, ctx):
    """A refund cut short by a crash happened if the effects file holds it."""
    path = ctx.home / "effects.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    done = any(json.loads(line).get("refund") == key for line in lines)
    return {"refunded": key} if done else False

@tool(confirm=True)
def close_account(user: str, ctx: Context) -> str:
    """Close a customer's account for good. Destructive: a human approves it."""
    _effect(ctx, {"closed": user})
    return f"closed {user}"

def flaky(x: int) -> str:
    """Always fails, the same way."""
    raise ValueError("the backend is down")

def run(params: Params, ctx: Context) -> Result:
    tools = [search_orders, refund, close_account, flaky]
    if params.structured:
        got = ctx.llm.run(params.prompt, tools=tools, schema=Verdict, max_steps=params.max_steps)
        return Result(parsed=got.model_dump())
    done = ctx.llm.run(params.prompt, tools=tools, max_steps=params.max_steps)
    return Result(text=done.text, tokens_in=done.tokens_in)
'''


# -- the two wire formats, scripted the same way ------------------------------------------


class Wire:
    """One fake server and how its turns are written."""

    def __init__(self, kind: str, server: FakeLLM) -> None:
        self.kind = kind
        self.server = server

    def calls(self, *calls: tuple[str, object]):
        """A turn asking for ``calls`` (name, arguments), ids call_1, call_2..."""
        if self.kind == "openai":
            return reply(
                None,
                finish_reason="tool_calls",
                tool_calls=[
                    {
                        "id": f"call_{n}",
                        "type": "function",
                        "function": {
                            "name": name,
                            "arguments": args if isinstance(args, str) else json.dumps(args),
                        },
                    }
                    for n, (name, args) in enumerate(calls, 1)
                ],
            )
        return message(
            None,
            stop_reason="tool_use",
            blocks=[
                {"type": "tool_use", "id": f"call_{n}", "name": name, "input": args}
                for n, (name, args) in enumerate(calls, 1)
            ],
        )

    def answer(self, text: str):
        """A final turn of ``text``."""
        return reply(text) if self.kind == "openai" else message(text)

    def results(self, request) -> list[dict]:
        """The tool results a request sent back, as ``{"id", "content", "error"}``."""
        body = request.body
        if self.kind == "openai":
            return [
                {"id": m["tool_call_id"], "content": m["content"], "error": None}
                for m in body["messages"]
                if m["role"] == "tool"
            ]
        return [
            {"id": b["tool_use_id"], "content": b["content"], "error": b.get("is_error", False)}
            for m in body["messages"]
            if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_result"
        ]

    def offered(self, request) -> list[str]:
        """The names of the tools a request offered."""
        tools = request.body.get("tools", [])
        if self.kind == "openai":
            return [t["function"]["name"] for t in tools]
        return [t["name"] for t in tools]


@pytest.fixture(params=["openai", "anthropic"])
def wire(request):
    server = FakeLLM() if request.param == "openai" else FakeAnthropic()
    with server:
        yield Wire(request.param, server)


def tooler(project, wire, *, limits: str = "", permissions: str = "", usd: str = "10.0"):
    kind = "anthropic" if wire.kind == "anthropic" else "openai"
    (project.home / "agentops.toml").write_text(
        textwrap.dedent(
            f"""
            [providers.p]
            kind = "{kind}"
            base_url = "{wire.server.base_url}"

            [models.m]
            provider = "p"
            name = "model-x"
            input_usd_per_mtok = 1000.0
            output_usd_per_mtok = 1000.0
            """
        )
    )
    project.add_agent(
        "tooler",
        TOOLER,
        textwrap.dedent(
            f"""
            [llm]
            model = "m"
            max_tokens = 100

            [limits]
            cost_usd_per_day = {usd}
            {limits}

            {permissions}
            """
        ),
    )


def go(project, clock, **params):
    outcome, _ = run(project, clock, name="tooler", **params)
    return outcome


def effects(project) -> list[dict]:
    path = project.home / "effects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls(project) -> list[dict]:
    return events(project, "llm.tool_call", name="tooler")


# -- the loop ---------------------------------------------------------------------------


def test_a_loop_of_tool_calls_ends_in_a_validated_result(project, clock, wire):
    """Search, then refund, then the answer: each result goes back, the schema is validated."""
    tooler(project, wire)
    wire.server.script(
        wire.calls(("search_orders", {"query": "42"})),
        wire.calls(("refund", {"order_id": "o-42", "amount": 12.5})),
        wire.answer('{"verdict": "refunded"}'),
    )
    outcome = go(project, clock, structured=True)
    assert outcome.exit_code == 0, outcome.message
    assert result_of(project, "tooler")["parsed"] == {"verdict": "refunded"}
    first, second, third = wire.server.requests
    assert wire.offered(first) == ["search_orders", "refund", "close_account", "flaky"]
    (found,) = wire.results(second)
    assert found["id"] == "call_1"
    assert "o-42" in found["content"]
    assert "untrusted" in found["content"].lower(), "a tool's result is wrapped as untrusted"
    assert [r["id"] for r in wire.results(third)] == ["call_1", "call_1"]
    assert effects(project) == [{"refund": "o-42", "amount": 12.5}]
    assert [(c["tool"], c["ok"]) for c in calls(project)] == [
        ("search_orders", True),
        ("refund", True),
    ]
    assert calls(project)[1]["kind"] == "effect"
    assert calls(project)[1]["arguments"] == {"order_id": "o-42", "amount": 12.5}
    assert project.state("tooler")["metrics"]["tool_calls"] == 2


def test_a_tool_schema_comes_from_the_signature_and_the_docstring(project, clock, wire):
    """Typed parameters become the JSON Schema, defaults optional; ctx is not shown."""
    tooler(project, wire)
    wire.server.script(wire.answer("nothing to do"))
    assert go(project, clock).exit_code == 0
    (asked,) = wire.server.requests
    tools = asked.body["tools"]
    if wire.kind == "openai":
        assert tools[0]["type"] == "function"
        spec = {t["function"]["name"]: t["function"] for t in tools}
        schema = spec["refund"]["parameters"]
    else:
        spec = {t["name"]: t for t in tools}
        schema = spec["refund"]["input_schema"]
    assert spec["search_orders"]["description"].startswith("Find orders matching query.")
    assert schema["required"] == ["order_id", "amount"]
    assert set(schema["properties"]) == {"order_id", "amount"}
    assert schema["properties"]["amount"]["type"] == "number"


def test_parallel_calls_in_one_turn_are_each_answered(project, clock, wire):
    """Two calls in one turn: both performed, in order, both results in the next request."""
    tooler(project, wire)
    wire.server.script(
        wire.calls(("search_orders", {"query": "a"}), ("search_orders", {"query": "b"})),
        wire.answer("done"),
    )
    outcome = go(project, clock)
    assert outcome.exit_code == 0, outcome.message
    results = wire.results(wire.server.requests[1])
    assert [r["id"] for r in results] == ["call_1", "call_2"]
    assert "o-a" in results[0]["content"]
    assert "o-b" in results[1]["content"]
    if wire.kind == "anthropic":  # the results of one turn go back in one user message
        users = [m for m in wire.server.requests[1].body["messages"] if m["role"] == "user"]
        assert len(users[-1]["content"]) == 2
    assert result_of(project, "tooler")["text"] == "done"
    per_turn = 10 if wire.kind == "openai" else 20  # the fakes' usage of a reply
    assert result_of(project, "tooler")["tokens_in"] == 2 * per_turn, "the tokens of every turn"


def test_invalid_arguments_go_back_and_a_corrected_call_runs(project, clock, wire):
    """A missing argument: the model is told what was wrong; its corrected call runs once."""
    tooler(project, wire)
    wire.server.script(
        wire.calls(("refund", {"order_id": "o-1"})),
        wire.calls(("refund", {"order_id": "o-1", "amount": 3})),
        wire.answer("done"),
    )
    assert go(project, clock).exit_code == 0
    (told,) = wire.results(wire.server.requests[1])
    assert told["content"].startswith("error: invalid arguments: amount: Field required")
    assert effects(project) == [{"refund": "o-1", "amount": 3.0}]
    assert [c["ok"] for c in calls(project)] == [False, True]


def test_arguments_that_are_not_json_are_refused_to_the_model(project, clock):
    """OpenAI's arguments are a string: garbled JSON is an error result, not a crash."""
    with FakeLLM() as server:
        wire = Wire("openai", server)
        tooler(project, wire)
        server.script(wire.calls(("search_orders", '{"query": ')), wire.answer("sorry"))
        assert go(project, clock).exit_code == 0
        (told,) = wire.results(server.requests[1])
        assert "not valid JSON" in told["content"]


def test_an_unknown_tool_is_an_error_result_logged_and_counted(project, clock, wire):
    """A model inventing a tool: told there is none, logged, counted; nothing runs."""
    tooler(project, wire)
    wire.server.script(wire.calls(("drop_database", {})), wire.answer("ok"))
    assert go(project, clock).exit_code == 0
    (told,) = wire.results(wire.server.requests[1])
    assert "there is no tool 'drop_database'" in told["content"]
    (call,) = calls(project)
    assert (call["tool"], call["ok"]) == ("drop_database", False)
    assert project.state("tooler")["metrics"]["tool_calls_unknown"] == 1


def test_a_tool_failing_the_same_way_twice_ends_the_run(project, clock, wire):
    """The first failure goes back to the model; the same again ends the run in one line."""
    tooler(project, wire)
    wire.server.script(
        wire.calls(("flaky", {"x": 1})),
        wire.calls(("flaky", {"x": 2})),
        wire.answer("never asked"),
    )
    outcome = go(project, clock)
    assert outcome.exit_code == 1
    assert "tool flaky failed twice in a row: ValueError: the backend is down" in outcome.message
    assert len(wire.server.requests) == 2
    (told,) = wire.results(wire.server.requests[1])
    assert "the backend is down" in told["content"]
    assert [c["ok"] for c in calls(project)] == [False, False]


def test_max_steps_bounds_the_loop(project, clock, wire):
    """A model that never stops calling tools: max_steps turns, then the run fails."""
    tooler(project, wire)
    wire.server.default = wire.calls(("search_orders", {"query": "again"}))
    outcome = go(project, clock, max_steps=3)
    assert outcome.exit_code == 1
    assert "no answer in max_steps 3 turns" in outcome.message
    assert len(wire.server.requests) == 3


def test_steps_per_run_bounds_the_loop_too(project, clock, wire):
    """Each turn is a step of [limits] steps_per_run."""
    tooler(project, wire, limits="steps_per_run = 2")
    wire.server.default = wire.calls(("search_orders", {"query": "again"}))
    outcome = go(project, clock)
    assert outcome.exit_code == 1
    assert "steps_per_run 2" in outcome.message
    assert len(wire.server.requests) == 2


# -- effects, exactly once -----------------------------------------------------------------


def test_the_same_arguments_twice_are_one_effect(project, clock, wire):
    """refund twice with the same arguments, in one run and the next: done once."""
    tooler(project, wire)
    same = ("refund", {"order_id": "o-7", "amount": 1})
    wire.server.script(wire.calls(same), wire.calls(same), wire.answer("done"))
    assert go(project, clock).exit_code == 0
    wire.server.script(wire.calls(same), wire.answer("done"))
    assert go(project, clock).exit_code == 0
    assert effects(project) == [{"refund": "o-7", "amount": 1.0}]
    results = [wire.results(r)[-1]["content"] for r in wire.server.requests if wire.results(r)]
    assert all('"refunded": "o-7"' in r for r in results), "the recorded result each time"
    assert list(project.ledger("tooler")) == ["tool.refund"]


# -- destructive tools: held for a human ------------------------------------------------------


def test_a_destructive_call_is_held_then_approved_once(project, clock, wire, invoke):
    """confirm=True: the run ends held; approve performs it once; the next run sees its result."""
    tooler(project, wire)
    close = ("close_account", {"user": "ann"})
    wire.server.script(wire.calls(close))
    outcome = go(project, clock)
    assert (outcome.exit_code, str(outcome.status)) == (0, "held"), outcome.message
    assert effects(project) == []
    (held,) = project.state("tooler")["review"]
    assert (held["tool"], held["result"]) == ("close_account", {"user": "ann"})
    assert calls(project)[-1]["held"] is True
    listed = invoke("review", "list", "tooler")
    assert 'close_account({"user": "ann"})' in listed.output, listed.output

    wire.server.script(wire.calls(close))  # the next run asks again: held once, not twice
    assert str(go(project, clock).status) == "held"
    assert len(project.state("tooler")["review"]) == 1

    approved = approve_held(
        AgentopsProject(project.home), "tooler", held["id"], environ={}, clock=clock
    )
    assert approved.exit_code == 0, approved.message
    assert effects(project) == [{"closed": "ann"}]
    assert project.state("tooler")["review"] == []

    wire.server.script(wire.calls(close), wire.answer("closed"))
    assert go(project, clock).exit_code == 0
    assert effects(project) == [{"closed": "ann"}], "performed once, by the approval"
    (seen,) = wire.results(wire.server.requests[-1])
    assert "closed ann" in seen["content"]


def test_a_rejected_call_is_never_performed_and_the_model_is_told_why(project, clock, wire):
    """review reject: on the next run the model hears a human said no, and why."""
    tooler(project, wire)
    close = ("close_account", {"user": "bob"})
    wire.server.script(wire.calls(close))
    assert str(go(project, clock).status) == "held"
    (held,) = project.state("tooler")["review"]
    rejected = reject_held(AgentopsProject(project.home), "tooler", held["id"], reason="VIP")
    assert rejected.exit_code == 0, rejected.message
    wire.server.script(wire.calls(close), wire.answer("left open"))
    assert go(project, clock).exit_code == 0
    (told,) = wire.results(wire.server.requests[-1])
    assert "a human rejected this call: VIP" in told["content"]
    assert effects(project) == []
    assert project.state("tooler")["review"] == []


# -- least privilege and money ----------------------------------------------------------------


def test_permissions_tools_hides_a_tool_from_the_model(project, clock, wire):
    """[permissions] tools: a tool not listed is never offered; calling it is unknown."""
    tooler(project, wire, permissions='[permissions]\ntools = ["search_orders"]')
    wire.server.script(wire.calls(("refund", {"order_id": "x", "amount": 1})), wire.answer("ok"))
    assert go(project, clock).exit_code == 0
    assert wire.offered(wire.server.requests[0]) == ["search_orders"]
    (told,) = wire.results(wire.server.requests[1])
    assert "there is no tool 'refund'" in told["content"]
    assert effects(project) == []
    (offered,) = events(project, "llm.tools_offered", name="tooler")
    assert offered["hidden"] == ["refund", "close_account", "flaky"]


def test_a_budget_exhausted_mid_loop_sends_nothing_past_the_cap(project, clock, wire):
    """Each turn is reserved like any call: the turn that could pass the cap is never sent."""
    # About 1 dollar a turn reserved at these prices: a cap of 2.5 leaves room for two.
    tooler(project, wire, usd="2.5")
    wire.server.default = wire.calls(("search_orders", {"query": "q"}))
    outcome = go(project, clock)
    assert outcome.exit_code == 75, outcome.message
    sent = len(wire.server.requests)
    assert 1 <= sent < 8
    spent = project.state("tooler")["metrics"]["cost_usd"]
    assert spent <= 2.5


# -- agentops check ---------------------------------------------------------------------------

UNDESCRIBED = '''
from pydantic import BaseModel
from agentops import Context, tool

class Params(BaseModel):
    pass

class Result(BaseModel):
    text: str | None = None

def lookup(query: str) -> str:
    return query

@tool(effect=True)
def send(to, text: str) -> None:
    """Send a message."""

def run(params: Params, ctx: Context) -> Result:
    return Result(text=ctx.llm.run("hi", tools=[lookup, send]).text)
'''


def test_check_names_each_tool_the_model_could_not_be_shown(project, invoke):
    """No docstring, an untyped parameter, a listed tool that is no function: file:line each."""
    project.add_agent("undescribed", UNDESCRIBED, '[permissions]\ntools = ["lookup", "ghost"]\n')
    result = invoke("check")
    assert result.exit_code == 78
    lines = result.output.splitlines()
    assert "agents/undescribed/agent.py:11: tool lookup has no docstring" in lines, lines
    assert "agents/undescribed/agent.py:14: tool send: parameter to has no type" in lines, lines
    assert "agents/undescribed/agent.py: [permissions] tools: ghost is no function of agent.py" in (
        lines
    ), lines


def test_a_tool_without_a_docstring_is_refused_by_the_run_too(project, clock):
    """ctx.llm.run refuses an undescribed tool before any request: the run fails in one line."""
    with FakeLLM() as server:
        tooler(project, Wire("openai", server))
        project.add_agent(
            "tooler",
            UNDESCRIBED,
            (project.home / "agents" / "tooler" / "agent.toml").read_text(),
        )
        outcome = go(project, clock)
        assert outcome.exit_code == 1
        assert "tool lookup has no docstring" in outcome.message
        assert server.requests == []


# -- seen: the report -------------------------------------------------------------------------


def test_the_report_shows_calls_errors_p95_and_tools_never_called(project, clock, wire, invoke):
    """report --json and --html: per tool its calls and errors; offered but never called."""
    tooler(project, wire)
    wire.server.script(
        wire.calls(("search_orders", {"query": "a"}), ("search_orders", {"limit": 1})),
        wire.calls(("refund", {"order_id": "o-a", "amount": 2})),
        wire.answer("done"),
    )
    assert go(project, clock).exit_code == 0
    from datetime import timedelta  # noqa: PLC0415

    from agentops.ops.html import render_html  # noqa: PLC0415
    from agentops.ops.report import build_report  # noqa: PLC0415

    report = build_report(
        AgentopsProject(project.home), now=clock() + timedelta(minutes=1), since_s=86400
    )
    figures = report.agents["tooler"]
    assert figures["tools"]["search_orders"]["calls"] == 2
    assert figures["tools"]["search_orders"]["errors"] == 1
    assert figures["tools"]["refund"] == {
        "calls": 1,
        "errors": 0,
        "p95_ms": figures["tools"]["refund"]["p95_ms"],
    }
    assert figures["tools"]["refund"]["p95_ms"] >= 0
    assert figures["tools_never_called"] == ["close_account", "flaky"]
    page = render_html(report)
    assert 'data-tool="search_orders"' in page
    assert "never called" in page
    text = invoke("report", "--since", "3650d")  # the fake clock is in the past
    assert "tool search_orders: 2 call(s), 1 error(s)" in text.output, text.output
    assert "tools never called: close_account, flaky" in text.output


# -- a kill -9 inside an effect tool ------------------------------------------------------------


@pytest.mark.parametrize("moment", ["before", "after", "outside"])
def test_a_kill_inside_an_effect_tool_then_the_next_run_makes_it_happen_once(
    project, clock, moment
):
    """SIGKILL before the effect, after it, or from outside in do(): then exactly one refund.

    The next run asks reconcile(), and the model asks for the refund again.
    """
    with FakeLLM() as server:
        wire = Wire("openai", server)
        tooler(project, wire)
        (project.home / "kill-at").write_text(moment)
        server.script(wire.calls(("refund", {"order_id": "o-9", "amount": 5})))
        process = subprocess.Popen(
            [str(AGENTOPS), "--home", str(project.home), "run", "tooler"],
            env=cron_env(project.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if moment == "outside":
            deadline = time.monotonic() + 60  # bounds a hang only: waits on the file
            while not (project.home / "effect-done").exists():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the tool never ran"
                time.sleep(0.01)
            process.kill()
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        server.script(wire.calls(("refund", {"order_id": "o-9", "amount": 5})), wire.answer("ok"))
        outcome = go(project, clock)
        assert outcome.exit_code == 0, outcome.message
    assert effects(project) == [{"refund": "o-9", "amount": 5.0}]
    assert project.ledger("tooler")["tool.refund"]["o-9"].split()[1] == "committed"
    reconciled = events(project, "action.reconciled", name="tooler")
    assert [e["happened"] for e in reconciled] == [moment != "before"]


@pytest.mark.parametrize("seed", range(6))
def test_a_kill_at_a_random_moment_of_an_effect_tool_then_one_refund(project, clock, seed):
    """SIGKILL at a random moment once do() has begun (or after it): then exactly one refund."""
    delay = random.Random(seed).uniform(0.0, 0.02)
    with FakeLLM() as server:
        wire = Wire("openai", server)
        tooler(project, wire)
        (project.home / "kill-at").write_text("random")
        # Only the turn that calls the tool: nothing is left queued for the next run.
        server.script(wire.calls(("refund", {"order_id": "o-9", "amount": 5})))
        process = subprocess.Popen(
            [str(AGENTOPS), "--home", str(project.home), "run", "tooler"],
            env=cron_env(project.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60  # bounds a hang only: waits on the file
        while not (project.home / "tool-entered").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the tool never ran"
            time.sleep(0.001)
        time.sleep(delay)  # the moment of the kill: anywhere in do(), its commit or after
        process.kill()
        process.communicate(timeout=60)
        (project.home / "kill-at").unlink()
        server.script(wire.calls(("refund", {"order_id": "o-9", "amount": 5})), wire.answer("ok"))
        outcome = go(project, clock)
        assert outcome.exit_code == 0, outcome.message
    assert effects(project) == [{"refund": "o-9", "amount": 5.0}]
    assert project.ledger("tooler")["tool.refund"]["o-9"].split()[1] == "committed"


# -- fallbacks mid-loop ------------------------------------------------------------------------


def test_a_fallback_mid_loop_takes_the_conversation_in_its_own_wire_format(project, clock):
    """OpenAI fails after a tool call: Anthropic gets the call and its result as tool blocks."""
    with FakeLLM() as gpt, FakeAnthropic() as claude:
        first = Wire("openai", gpt)
        tooler(project, first)
        toml = project.home / "agentops.toml"
        toml.write_text(
            toml.read_text()
            + textwrap.dedent(
                f"""
                [providers.claude]
                kind = "anthropic"
                base_url = "{claude.base_url}"

                [models.claude]
                provider = "claude"
                name = "claude-x"
                input_usd_per_mtok = 1000.0
                output_usd_per_mtok = 1000.0
                """
            )
        )
        agent_toml = project.home / "agents" / "tooler" / "agent.toml"
        agent_toml.write_text(
            agent_toml.read_text().replace('model = "m"', 'model = "m"\nfallbacks = ["claude"]')
        )
        gpt.script(
            first.calls(("search_orders", {"query": "7"})),
            Behaviour(
                status=400,
                body=b'{"error": {"message": "context too long", "type": "invalid_request_error"}}',
            ),
        )
        claude.script(message("found o-7"))
        outcome = go(project, clock)
        assert outcome.exit_code == 0, outcome.message
        assert result_of(project, "tooler")["text"] == "found o-7"
        (asked,) = claude.requests
        turns = asked.body["messages"]
        assert [t["role"] for t in turns] == ["user", "assistant", "user"]
        assert turns[1]["content"][0] == {
            "type": "tool_use",
            "id": "call_1",
            "name": "search_orders",
            "input": {"query": "7"},
        }
        (result,) = turns[2]["content"]
        assert (result["type"], result["tool_use_id"]) == ("tool_result", "call_1")
        assert "o-7" in result["content"]
        assert [t["name"] for t in asked.body["tools"]] == [
            "search_orders",
            "refund",
            "close_account",
            "flaky",
        ]


# -- the wire formats alone ---------------------------------------------------------------------

ENDPOINT = SimpleNamespace(
    base_url="http://h/v1", api_key=None, token_param="max_tokens", reasoning_effort=None
)

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "refund 7"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "name": "search_orders", "arguments": {"query": "7"}},
            {"id": "c2", "name": "refund", "arguments": '{"order_id": '},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "search_orders", "content": "[]"},
    {
        "role": "tool",
        "tool_call_id": "c2",
        "name": "refund",
        "content": "error: x",
        "is_error": True,
    },
]

SPEC = ToolSpec(name="search_orders", description="Find orders.", parameters={"type": "object"})


def test_openai_sends_tools_and_the_conversation_as_its_api_documents():
    """tools as functions; the calls' arguments as JSON strings; each result a role tool message."""
    request = ChatRequest(model="m", messages=CONVERSATION, max_tokens=5, tools=(SPEC,))
    body = wire_format("openai").build(request, ENDPOINT).body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "search_orders",
                "description": "Find orders.",
                "parameters": {"type": "object"},
            },
        }
    ]
    system, user, assistant, first, second = body["messages"]
    assert (system["role"], user["content"]) == ("system", "refund 7")
    assert assistant["content"] is None
    assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == [
        '{"query": "7"}',
        '{"order_id": ',
    ]
    assert all(c["type"] == "function" for c in assistant["tool_calls"])
    assert first == {"role": "tool", "tool_call_id": "c1", "content": "[]"}
    assert second["tool_call_id"] == "c2"


def test_anthropic_sends_tool_use_blocks_and_the_results_in_one_user_message():
    """tools with input_schema; tool_use blocks; both results as tool_result blocks together."""
    request = ChatRequest(model="m", messages=CONVERSATION, max_tokens=5, tools=(SPEC,))
    body = wire_format("anthropic").build(request, ENDPOINT).body
    assert body["tools"] == [
        {"name": "search_orders", "description": "Find orders.", "input_schema": {"type": "object"}}
    ]
    assert body["system"] == "Be brief."
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": "refund 7"}
    assert assistant["content"] == [
        {"type": "tool_use", "id": "c1", "name": "search_orders", "input": {"query": "7"}},
        {"type": "tool_use", "id": "c2", "name": "refund", "input": {}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "[]"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "error: x", "is_error": True},
        ],
    }


def test_openai_tool_calls_are_read_whatever_compatible_servers_send():
    """A JSON string, an object (some servers), garbled text (kept for the loop), no id."""
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"type": "function", "function": {"name": "g", "arguments": {"y": 2}}},
        {"id": "c", "type": "function", "function": {"name": "h", "arguments": "{oops"}},
    ]
    body = reply(None, finish_reason="tool_calls", tool_calls=calls).body
    read = wire_format("openai").parse(httpx.Response(200, content=body))
    assert read.finish_reason == "tool_calls"
    assert read.text is None
    assert [(c.id, c.name, c.arguments) for c in read.tool_calls] == [
        ("a", "f", {"x": 1}),
        ("call_1", "g", {"y": 2}),
        ("c", "h", "{oops"),
    ]


def test_anthropic_tool_use_blocks_are_read_beside_the_text():
    """Text and tool_use blocks in one reply; stop_reason tool_use."""
    blocks = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}},
    ]
    body = message(None, stop_reason="tool_use", blocks=blocks).body
    read = wire_format("anthropic").parse(httpx.Response(200, content=body))
    assert (read.text, read.finish_reason) == ("Let me look.", "tool_calls")
    assert [(c.id, c.name, c.arguments) for c in read.tool_calls] == [("toolu_1", "f", {"x": 1})]


# -- the loop's money, held in blocks ----------------------------------------------------------


def reserved(project) -> list[dict]:
    return events(project, "budget.reserved", name="tooler")


def test_a_loop_holds_its_turns_in_one_block_settled_to_what_they_cost(project, clock, wire):
    """Four turns, one durable reservation: half what the cap leaves, settled once to the calls."""
    tooler(project, wire, usd="10.0")
    search = wire.calls(("search_orders", {"query": "q"}))
    wire.server.script(search, search, search, wire.answer("done"))
    outcome = go(project, clock)
    assert outcome.exit_code == 0, outcome.message
    assert len(wire.server.requests) == 4
    (block,) = reserved(project)
    assert block["usd"] <= 10.0 * 0.5
    (settled,) = events(project, "budget.settled", name="tooler")
    assert settled["id"] == block["id"]
    paid = sum(e["cost_usd"] for e in events(project, "llm.call", name="tooler"))
    assert settled["usd"] == pytest.approx(paid)
    (spend,) = project.state("tooler")["budget"]["spends"]
    assert (spend["usd"], spend["id"]) == (pytest.approx(paid), None)


def test_a_block_the_caps_cannot_grant_degrades_to_a_reservation_a_turn(project, clock, wire):
    """A cap of 1.5 leaves no block for turns of about 1 dollar: each is reserved alone."""
    tooler(project, wire, usd="1.5")
    wire.server.script(wire.calls(("search_orders", {"query": "q"})), wire.answer("done"))
    outcome = go(project, clock)
    assert outcome.exit_code == 0, outcome.message
    turns = reserved(project)
    assert len(turns) == len(wire.server.requests) == 2
    settled = events(project, "budget.settled", name="tooler")
    assert [s["id"] for s in settled] == [t["id"] for t in turns]
    assert all(t["usd"] < 1.5 for t in turns)


@pytest.mark.parametrize("cap", ["2.5", "4.0", "7.0"])
def test_blocks_never_pass_a_cap(project, clock, cap):
    """A model that never stops: blocks, then turns alone, until the turn that would not fit."""
    with FakeLLM() as server:
        wire = Wire("openai", server)
        tooler(project, wire, usd=cap)
        server.default = wire.calls(("search_orders", {"query": "q"}))
        outcome = go(project, clock, max_steps=40)
        # Refused at the cap (75), or by a turn grown larger than the whole cap (1).
        assert outcome.exit_code in (1, 75), outcome.message
        assert f"cost_usd_per_day {float(cap):g}" in outcome.message
    spends = project.state("tooler")["budget"]["spends"]
    assert sum(s["usd"] for s in spends) <= float(cap) + 1e-9
    assert all(s["id"] is None for s in spends), "every block settled as the run ended"
    assert project.state("tooler")["metrics"]["cost_usd"] <= float(cap) + 1e-9


def test_a_kill_mid_loop_keeps_the_whole_block_and_the_next_run_finds_it(project, clock):
    """SIGKILL while the second turn is in flight: the block stays reserved, never less."""
    with FakeLLM() as server:
        wire = Wire("openai", server)
        tooler(project, wire, usd="10.0")
        server.script(wire.calls(("search_orders", {"query": "q"})), stall(60))
        process = subprocess.Popen(
            [str(AGENTOPS), "--home", str(project.home), "run", "tooler"],
            env=cron_env(project.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert server.wait_for(2, timeout_s=60), "the second turn never arrived"
        finally:
            process.kill()
            process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        (block,) = reserved(project)  # both turns drawn from it: one durable record
        server.script(wire.answer("done"))
        outcome = go(project, clock)
        assert outcome.exit_code == 0, outcome.message
    assert "run.recovered" in project.event_names("tooler")
    kept = [s for s in project.state("tooler")["budget"]["spends"] if s["id"] == block["id"]]
    assert [(s["usd"], s["tokens"]) for s in kept] == [(block["usd"], block["tokens"])]
