"""An agent that calls ``ctx.llm`` as its params say, and the helpers to run it and read its run.

For the tests of what providers answer (``providers/test_openai.py``,
``providers/test_anthropic.py``): the agent asks each prompt of ``prompts`` with
the options its params give, and returns what each :class:`~agentops.Completion`
said (or the :class:`~agentops.LLMError` it got, with ``catch``).
"""

from __future__ import annotations

import textwrap

from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent

__all__ = ["ASKER", "Waits", "agent_toml", "events", "result_of", "run", "spends"]

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
    *, model: str, fallbacks: str = "[]", llm: str = "", more: str = "", head: str = ""
) -> str:
    """agent.toml calling ``model``, then ``fallbacks``, 100 tokens a reply, two attempts a call."""
    return textwrap.dedent(
        f"""
        {head}

        [llm]
        model = "{model}"
        fallbacks = {fallbacks}
        max_tokens = 100
        {llm}

        [retry]
        attempts = 2
        initial = "1s"
        max = "1m"

        [limits]
        cost_usd_per_day = 10.0
        {more}
        """
    )


class Waits(list):
    """The sleeps a run asked for: recorded, and the fake clock moved on, none waited."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def __call__(self, seconds):
        self.append(seconds)
        self.clock.advance(seconds=seconds)


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
