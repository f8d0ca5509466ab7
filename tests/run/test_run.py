"""One run under its lease: what backs ``ctx``, made when first touched and kept across attempts."""

from __future__ import annotations

from suite import agent_source

RETRIED = agent_source(
    """
    clients = ctx.state.setdefault("clients", [])
    clients.append(id(ctx.http))
    seen = ctx.home / "attempts"
    seen.write_text(seen.read_text() + "x" if seen.exists() else "x")
    (ctx.home / f"clients-{len(seen.read_text())}").write_text(str(id(ctx.http)))
    (ctx.home / f"state-{len(seen.read_text())}").write_text(repr(sorted(ctx.state)))
    if len(seen.read_text()) < 2:
        raise TransientError("again")
    return Result()
    """,
    imports="from agentops import TransientError",
)


def test_each_attempt_starts_from_the_state_the_run_loaded(project, clock):
    """What attempt 1 put in ctx.state is gone for attempt 2; only attempt 2's is kept."""
    project.add_agent("agent", RETRIED, '[retry]\nattempts = 2\ninitial = "1s"\n')
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 0, outcome.message
    assert (project.home / "state-1").read_text() == (project.home / "state-2").read_text()
    assert len(project.state("agent")["data"]["clients"]) == 1


def test_ctx_http_is_one_client_for_every_attempt(project, clock):
    """The HTTP client is made once, when first touched, and kept across a retry."""
    project.add_agent("agent", RETRIED, '[retry]\nattempts = 2\ninitial = "1s"\n')
    assert project.run(clock=clock).exit_code == 0
    assert (project.home / "clients-1").read_text() == (project.home / "clients-2").read_text()


def test_what_an_agent_never_touches_is_never_made(project, clock):
    """No ctx.memory: no notes file, no memory in the state; no ctx.action: no ledger."""
    project.add_agent("agent")
    assert project.run("agent", clock=clock).exit_code == 0
    state_dir = project.home / "state"
    assert sorted(p.name for p in state_dir.iterdir() if not p.name.endswith(".lock")) == [
        "agent.attempt.json",
        "agent.json",
    ]
    assert project.state("agent")["memory"] == {}
