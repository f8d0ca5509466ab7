"""The step limit: `[limits] steps_per_run` ends a loop that never ends, long before its timeout."""

from __future__ import annotations

from suite import agent_source

LOOP = agent_source(
    """
    for i in range(params.steps):
        ctx.step(f"step {i}")
    return Result(steps=params.steps)
    """,
    params="steps: int = 5",
    result="steps: int",
)
"""An agent looping ``steps`` times, each turn a step."""


def test_step_limit_ends_a_runaway_loop(project, clock):
    """steps_per_run = 3 ends a five-step loop: exit 1, naming where it stopped."""
    project.add_agent("agent", LOOP, "[limits]\nsteps_per_run = 3\n")
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 1
    assert "more than steps_per_run 3 steps (at step 3)" in outcome.message
    assert project.run(clock=clock, overrides={"steps": "3"}).exit_code == 0


def test_each_attempt_counts_its_steps_afresh(project, clock):
    """A retried run() starts again from zero steps: three steps twice pass a limit of three."""
    project.add_agent(
        "agent",
        agent_source(
            """
            for i in range(3):
                ctx.step(f"step {i}")
            tries = ctx.home / "tries"
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            if len(tries.read_text()) < 2:
                raise TransientError("again")
            return Result()
            """,
            imports="from agentops import TransientError",
        ),
        '[limits]\nsteps_per_run = 3\n[retry]\nattempts = 2\ninitial = "1s"\n',
    )
    outcome = project.run(clock=clock)
    assert outcome.exit_code == 0, outcome.message
    assert (project.home / "tries").read_text() == "xx"


def test_without_a_limit_steps_are_only_counted(project, clock):
    """No steps_per_run: a long loop runs to its end."""
    project.add_agent("agent", LOOP)
    assert project.run(clock=clock, overrides={"steps": 1000}).exit_code == 0
