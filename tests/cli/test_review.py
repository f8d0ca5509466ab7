"""`agentops review list|approve|reject`: held results, for a person to decide."""

from __future__ import annotations

import json

from suite import agent_source

DRAFTER = agent_source(
    "return Result(confidence=0.6)",
    result="confidence: float",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        pass
    """,
)


def test_review_list_with_an_unreadable_agent_still_lists_the_others(project, invoke):
    """One agent's state file is garbage: it is named (74), the others' held results listed."""
    for name in ("alpha", "omega"):
        project.add_agent(name, DRAFTER)
        assert invoke("run", name).exit_code == 0
    project.add_agent("broken")
    project.state_path("broken").write_text("{not json")
    result = invoke("review", "list", "--json")
    assert result.exit_code == 74
    assert len(result.stderr.splitlines()) == 1
    assert str(project.state_path("broken")) in result.stderr
    assert [row["agent"] for row in json.loads(result.stdout)] == ["alpha", "omega"]
    table = invoke("review", "list")
    assert table.exit_code == 74
    assert [line.split()[0] for line in table.stdout.splitlines()] == ["AGENT", "alpha", "omega"]


def test_review_list_survives_a_broken_agent(project, invoke):
    """One agent with broken TOML is reported; the others' held results are listed."""
    project.add_agent("drafter", DRAFTER)
    assert invoke("run", "drafter").exit_code == 0
    project.add_agent("broken", toml="nonsense = [\n")
    result = invoke("review", "list", "--json")
    assert result.exit_code == 78
    assert "bad TOML" in result.stderr
    assert [row["agent"] for row in json.loads(result.stdout)] == ["drafter"]
