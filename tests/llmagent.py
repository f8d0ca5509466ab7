"""An agent that calls ``ctx.llm`` as its params say, and the helpers to run it and read its run.

For the tests of what providers answer (``providers/test_openai.py``,
``providers/test_anthropic.py``): the agent asks each prompt of ``prompts`` with
the options its params give, and returns what each :class:`~agentops.Completion`
said (or the :class:`~agentops.LLMError` it got, with ``catch``).
"""

from __future__ import annotations

import textwrap

from agentops.llm.tokens import bound_messages
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from suite import Waits

__all__ = [
    "ASKER",
    "IN_USD",
    "OUT_USD",
    "Waits",
    "agent_toml",
    "bound_to",
    "conversation",
    "cost",
    "events",
    "models_toml",
    "result_of",
    "run",
    "spends",
    "worst_case",
]

IN_USD, OUT_USD = 1000.0, 2000.0
"""Prices per million tokens: a token in costs $0.001, a token out $0.002."""


def cost(tokens_in: int, tokens_out: int) -> float:
    """Dollars for ``tokens_in`` and ``tokens_out`` at the prices of :func:`models_toml`."""
    return (tokens_in * IN_USD + tokens_out * OUT_USD) / 1e6


def worst_case(prompt: str = "hello", max_tokens: int = 100) -> float:
    """What a one-message call reserves: the prompt's bound and max_tokens, at the prices."""
    return cost(bound_messages([{"role": "user", "content": prompt}]), max_tokens)


def conversation(turns: int) -> list[dict[str, str]]:
    """A system prompt, then ``turns`` questions and answers of about 70 characters each."""
    messages = [{"role": "system", "content": "You are terse."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question {turn} " + "x" * 60})
        messages.append({"role": "assistant", "content": f"answer {turn} " + "y" * 60})
    return messages


def models_toml(base_url: str, *, small: str = "", big: str = "", local: bool = False) -> str:
    """agentops.toml: models ``small`` and ``big`` (and ``local``, unpriced) on ``base_url``."""
    toml = textwrap.dedent(
        f"""
        [providers.fake]
        base_url = "{base_url}"
        api_key_env = "FAKE_OPENAI_KEY"

        [models.small]
        provider = "fake"
        name = "small"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}
        {small}

        [models.big]
        provider = "fake"
        name = "big"
        input_usd_per_mtok = {IN_USD}
        output_usd_per_mtok = {OUT_USD}
        {big}
        """
    )
    if local:
        toml += '\n[models.local]\nprovider = "fake"\nname = "local"\n'
    return toml


ASKER = """
from pydantic import BaseModel
from agentops import Context, LLMError, ReplyRefused

class Params(BaseModel):
    prompts: list[str] = ["hello"]
    system: str = ""
    model: str | None = None
    structured: bool = False
    lenient: bool = False
    allow_truncated: bool = True
    cache_system: bool = False
    catch: bool = False

class Answer(BaseModel):
    answer: str

class Lenient(BaseModel):
    answer: str
    note: str = ""

class Result(BaseModel):
    replies: list[dict] = []
    error: str | None = None
    refusal: str | None = None
    refused_tokens: int | None = None

def run(params: Params, ctx: Context) -> Result:
    result = Result()
    schema = (Lenient if params.lenient else Answer) if params.structured else None
    try:
        for prompt in params.prompts:
            messages = [{"role": "user", "content": prompt}]
            if params.system:
                messages.insert(0, {"role": "system", "content": params.system})
            reply = ctx.llm.complete(
                messages,
                model=params.model,
                schema=schema,
                allow_truncated=params.allow_truncated,
                cache_system=params.cache_system,
            )
            result.replies.append(
                {
                    "text": reply.text,
                    "parsed": reply.parsed.model_dump() if reply.parsed else None,
                    "model": reply.model,
                    "finish_reason": reply.finish_reason,
                    "raw_finish_reason": reply.raw_finish_reason,
                    "truncated": reply.truncated,
                    "tokens_in": reply.tokens_in,
                    "tokens_out": reply.tokens_out,
                    "tokens_cached": reply.tokens_cached,
                    "tokens_cache_write": reply.tokens_cache_write,
                    "tokens_reasoning": reply.tokens_reasoning,
                    "cost_usd": reply.cost_usd,
                    "cached": reply.cached,
                    "latency_ms": reply.latency_ms,
                }
            )
    except ReplyRefused as exc:
        if not params.catch:
            raise
        result.error = f"ReplyRefused: {exc}"
        result.refusal = exc.refusal
        result.refused_tokens = exc.completion.tokens_in + exc.completion.tokens_out
    except LLMError as exc:
        if not params.catch:
            raise
        result.error = f"{type(exc).__name__}: {exc}"
    return result
"""
"""The agent: its params choose the prompts, the model and the options of each call."""


def agent_toml(
    *,
    model: str,
    fallbacks: str = "[]",
    llm: str = "",
    more: str = "",
    head: str = "",
    usd_per_day: float | None = 10.0,
    retry_max: str = "1m",
) -> str:
    """agent.toml calling ``model``, then ``fallbacks``, 100 tokens a reply, two attempts a call.

    ``usd_per_day``: the daily cap (None: no ``[limits]``, for ``more`` to give).
    """
    limits = "" if usd_per_day is None else f"[limits]\ncost_usd_per_day = {usd_per_day}"
    return f"""
{head}

[llm]
model = "{model}"
fallbacks = {fallbacks}
max_tokens = 100
{llm}

[retry]
attempts = 2
initial = "1s"
max = "{retry_max}"

{limits}
{more}
"""


def run(project, clock, name="asker", **params):
    """One in-process run of ``name`` with ``params``: its outcome, and the waits it asked for."""
    waits = Waits(clock)
    outcome = run_agent(
        AgentopsProject(project.home),
        name,
        overrides=params,
        environ={},
        clock=clock,
        sleep=waits,
    )
    return outcome, waits


def events(project, event, name="asker"):
    """The log lines of ``event``."""
    return [e for e in project.events(name) if e["event"] == event]


def result_of(project, name="asker"):
    """The result of the last run."""
    return events(project, "run.finished", name)[-1].get("result")


def spends(project, name="asker"):
    """The dollars of every spend the state keeps, oldest first."""
    return [s["usd"] for s in project.state(name)["budget"]["spends"]]


def bound_to(agent: str):
    """:func:`run`, :func:`events`, :func:`result_of` and :func:`spends` of ``agent`` unless told.

    For a test file whose agent is not the asker: ``run, events, result_of,
    spends = bound_to("writer")``.
    """

    def run_it(project, clock, name=agent, **params):
        return run(project, clock, name, **params)

    def events_of(project, event, name=agent):
        return events(project, event, name)

    def result(project, name=agent):
        return result_of(project, name)

    def spent(project, name=agent):
        return spends(project, name)

    return run_it, events_of, result, spent
