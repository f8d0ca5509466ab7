"""``agentops init``: a new agent's directory, with a test that passes at once.

Each template is an ``agent.toml``, an ``agent.py`` and a ``test_<name>.py``
written with the test kit (:mod:`agentops.testing`), so an agent starts life
tested: ``pytest agents/<name>`` passes before the first edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from agentops.project.home import Project

__all__ = ["TEMPLATES", "scaffold"]

_BASIC_TOML = """\
description = "Says hello and counts its runs."
schedule = "0 * * * *"       # every hour; `agentops cron --install` puts it in your crontab
timeout = "1m"

[params]
who = "world"
"""

_BASIC_PY = '''\
"""{name}: says hello and counts its runs. Replace this with what it should do."""

from pydantic import BaseModel

from agentops import Context


class Params(BaseModel):
    who: str = "world"


class Result(BaseModel):
    message: str
    runs: int


def run(params: Params, ctx: Context) -> Result:
    runs = ctx.state.get("runs", 0) + 1
    ctx.state["runs"] = runs  # kept for the next run, if this one succeeds
    ctx.log.info("greeting.made", who=params.who, runs=runs)
    return Result(message=f"Hello, {{params.who}}!", runs=runs)
'''

_BASIC_TEST = '''\
"""Tests of {name}, run with `pytest agents/{name}`."""

from pathlib import Path

from agentops.testing import AgentHarness

AGENT = Path(__file__).parent


def test_it_greets_and_counts_its_runs():
    """Each run says hello; the count goes on from run to run."""
    with AgentHarness(AGENT) as agent:
        first = agent.run()
        assert first.exit_code == 0
        assert first.result == {{"message": "Hello, world!", "runs": 1}}
        second = agent.run(params={{"who": "Ada"}})
        assert second.result == {{"message": "Hello, Ada!", "runs": 2}}
'''

_HTTP_TOML = """\
description = "Fetches a JSON feed and publishes each new item exactly once."
schedule = "*/15 * * * *"
timeout = "2m"

[params]
feed_url = "https://example.org/feed.json"

[limits]
requests_per_minute = 30

[limits.actions]
publish = "20/hour"

[permissions]
actions = ["publish"]
hosts = ["example.org"]
"""

_HTTP_PY = '''\
"""{name}: fetches a JSON feed and publishes each new item exactly once."""

import hashlib
import re

from pydantic import BaseModel, HttpUrl

from agentops import Context

PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{{0,99}}")


class Params(BaseModel):
    feed_url: HttpUrl


class Item(BaseModel):
    id: str | int
    title: str


class Result(BaseModel):
    published: list[str]


def file_name(key: str) -> str:
    """The feed's id is the feed's to choose: never a path ('../x'), a plain name or a digest."""
    if PLAIN.fullmatch(key):
        return f"{{key}}.txt"
    return f"_{{hashlib.sha256(key.encode()).hexdigest()[:32]}}.txt"


def run(params: Params, ctx: Context) -> Result:
    response = ctx.http.get(str(params.feed_url))
    response.raise_for_status()  # 429 and 5xx are retried, the rest fail the run
    outbox = ctx.home / "outbox" / ctx.agent  # outputs: not in the agent's own folder
    published = []
    for item in [Item.model_validate(raw) for raw in response.json()["items"]]:
        key = str(item.id)
        path = outbox / file_name(key)

        def publish(item: Item = item, path=path) -> str:
            outbox.mkdir(parents=True, exist_ok=True)
            path.write_text(item.title + "\\n")
            return path.name

        # At most once per item, across runs and crashes: a second run skips it.
        ctx.action("publish", key=key, do=publish)
        published.append(key)
    return Result(published=published)
'''

_HTTP_TEST = '''\
"""Tests of {name}, run with `pytest agents/{name}`: no network, a fake feed."""

from pathlib import Path

import httpx

from agentops.testing import AgentHarness

AGENT = Path(__file__).parent
FEED = {{"items": [{{"id": "a", "title": "First"}}, {{"id": "b", "title": "Second"}}]}}


def feed(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=FEED)


def test_each_item_is_published_once():
    """Two runs over the same feed publish each item once."""
    with AgentHarness(AGENT, http=feed) as agent:
        first = agent.run()
        assert first.exit_code == 0, first.outcome.message
        assert len(first.events_named("action.committed")) == 2
        second = agent.run()
        assert second.exit_code == 0
        assert second.events_named("action.committed") == []
        outbox = agent.home / "outbox" / AGENT.name
        assert sorted(p.name for p in outbox.iterdir()) == ["a.txt", "b.txt"]


def hostile(request: httpx.Request) -> httpx.Response:
    items = [{{"id": "../../x", "title": "Escape"}}, {{"id": 7, "title": "A number"}}]
    return httpx.Response(200, json={{"items": items}})


def test_an_id_is_never_a_path():
    """An id that is no plain name is published inside the outbox all the same, once."""
    with AgentHarness(AGENT, http=hostile) as agent:
        run = agent.run()
        assert run.exit_code == 0, run.outcome.message
        outbox = agent.home / "outbox" / AGENT.name
        names = sorted(p.name for p in outbox.iterdir())
        assert len(names) == 2
        assert "7.txt" in names
        assert [p.name for p in agent.home.rglob("x*")] == []


def down(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def test_a_feed_that_is_down_is_retried_then_fails():
    """A 503 is retried ([retry]), then the run fails with exit 1."""
    with AgentHarness(AGENT, http=down) as agent:
        run = agent.run()
        assert run.exit_code == 1
        assert len(run.events_named("retry.attempt")) == 2
'''

_LLM_TOML = """\
description = "Asks a model to summarise a text, with a rule-based answer when no model can."
timeout = "2m"

[params]
text = "agentops runs agents from cron: safely, with budgets, retries and logs."

[llm]
model = "main"               # declared in agentops.toml [models]: see docs/models.md
max_tokens = 300
cache = "24h"

[limits]
cost_usd_per_day = 0.50      # each call is reserved against it before it is sent
"""

_LLM_PY = '''\
"""{name}: asks a model to summarise a text; a rule-based summary when no model answers."""

from typing import Literal

from pydantic import BaseModel, Field

from agentops import Context


class Params(BaseModel):
    text: str = Field(min_length=1)


class Summary(BaseModel):
    """What the model is asked to reply with (validated; asked again if malformed)."""

    summary: str = Field(max_length=500)
    sentiment: Literal["positive", "neutral", "negative"]


class Result(BaseModel):
    summary: str
    sentiment: str
    source: Literal["model", "rules"]


def run(params: Params, ctx: Context) -> Result:
    reply = ctx.llm.complete(
        [
            {{"role": "system", "content": "You summarise texts in one sentence."}},
            {{"role": "user", "content": ctx.llm.untrusted(params.text, source="params.text")}},
        ],
        schema=Summary,
    )
    return Result(summary=reply.parsed.summary, sentiment=reply.parsed.sentiment, source="model")


def fallback(params: Params, ctx: Context, error: Exception) -> Result:
    """Every model failed (LLMUnavailable): the first sentence will do."""
    first = params.text.split(". ")[0].strip()
    return Result(summary=first, sentiment="neutral", source="rules")
'''

_LLM_TEST = '''\
"""Tests of {name}, run with `pytest agents/{name}`: no network, a fake model."""

from pathlib import Path

import httpx

from agentops.testing import AgentHarness

AGENT = Path(__file__).parent

# The models of the test's own project: a fake provider the transport below answers.
PROJECT = """
[providers.fake]
base_url = "https://llm.test/v1"

[models.main]
provider = "fake"
name = "fake-1"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
context_window = 8000
"""

SUMMARY = \'{{"summary": "Agents, run safely.", "sentiment": "positive"}}\'
REPLY = {{
    "choices": [{{"message": {{"content": SUMMARY}}}}],
    "usage": {{"prompt_tokens": 120, "completion_tokens": 20}},
}}


def model(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=REPLY)


def test_the_model_summarises_and_the_call_is_priced():
    """One call, validated into the Result, costed from its usage."""
    with AgentHarness(AGENT, http=model, project_toml=PROJECT) as agent:
        run = agent.run()
        assert run.exit_code == 0, run.outcome.message
        assert run.result == {{
            "summary": "Agents, run safely.",
            "sentiment": "positive",
            "source": "model",
        }}
        [call] = run.events_named("llm.call")
        assert call["cost_usd"] == (120 * 1.0 + 20 * 2.0) / 1e6


def down(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def test_without_a_model_the_rules_answer():
    """503 after every retry: LLMUnavailable reaches fallback(), the run is degraded."""
    with AgentHarness(AGENT, http=down, project_toml=PROJECT) as agent:
        run = agent.run()
        assert run.exit_code == 0
        assert run.result["source"] == "rules"
        assert run.events_named("run.degraded")
'''

TEMPLATES: dict[str, tuple[str, str, str]] = {
    "basic": (_BASIC_TOML, _BASIC_PY, _BASIC_TEST),
    "http": (_HTTP_TOML, _HTTP_PY, _HTTP_TEST),
    "llm": (_LLM_TOML, _LLM_PY, _LLM_TEST),
}
"""Template name -> (agent.toml, agent.py, the test), formatted with ``name``."""


def scaffold(project: Project, name: str, template: str) -> list[Path]:
    """Write ``agents/<name>/`` from ``template``; return the files written.

    Refuses (:class:`UsageError`) an existing agent or an unknown template:
    nothing is ever overwritten.
    """
    from agentops.project.home import check_agent_name  # noqa: PLC0415

    check_agent_name(name)
    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r}: use {', '.join(TEMPLATES)}")
    directory = project.home / "agents" / name
    if directory.exists():
        raise UsageError(f"{directory} exists already: agentops init never overwrites")
    test_file = f"test_{name.replace('-', '_')}.py"
    # pytest refuses two test modules of one name ("import file mismatch").
    clash = next(iter(sorted(directory.parent.glob(f"*/{test_file}"))), None)
    if clash is not None:
        raise UsageError(
            f"{clash} has the name the test of {name} would have: pytest cannot collect "
            "both; choose another name"
        )
    toml, code, test = TEMPLATES[template]
    directory.mkdir(parents=True)
    files = {
        "agent.toml": toml,
        "agent.py": code.format(name=name),
        test_file: test.format(name=name),
    }
    written = []
    for filename, text in files.items():
        path = directory / filename
        path.write_text(text)
        written.append(path)
    return written
