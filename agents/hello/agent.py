"""hello: the smallest agent. It greets, and remembers how many times it has."""

from pydantic import BaseModel, Field

from agentops import Context


class Params(BaseModel):
    """Who to greet."""

    name: str = Field("world", min_length=1, max_length=100)


class Result(BaseModel):
    """The greeting, and how many runs have succeeded so far."""

    greeting: str
    runs: int


def run(params: Params, ctx: Context) -> Result:
    """Greet, and count the run in the agent's own state."""
    runs = ctx.state.get("runs", 0) + 1
    ctx.state["runs"] = runs
    return Result(greeting=f"Hello, {params.name}!", runs=runs)
