"""Graceful degradation (fallback), confidence routing and human review, in-process."""

from __future__ import annotations

import json

import pytest

from agentops.model.ledger import Entry
from agentops.ops import admin
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import approve_held
from suite import agent_source, logged, one_line

FALLBACK = agent_source(
    """
    ctx.state["from_run"] = True
    raise RuntimeError("the model is down")
    """,
    params="fallback_fails: bool = False",
    result="answer: str",
    extra="""
    def fallback(params: Params, ctx: Context, error: Exception) -> Result:
        if params.fallback_fails:
            raise ValueError("no cached answer either")
        ctx.state["from_fallback"] = True
        return Result(answer=f"cached (because {error})")
    """,
)


def test_fallback_result_is_used_and_marked_degraded(project, clock):
    """run() fails, fallback() answers: exit 0, degraded in state and log."""
    project.add_agent("agent", FALLBACK)
    outcome = project.run(clock=clock)
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    state = project.state("agent")
    assert state["last_run"]["degraded"] is True
    assert state["metrics"]["degraded"] == 1
    assert state["data"] == {"from_fallback": True}, "only the fallback's state is kept"
    events = project.events("agent")
    degraded = next(e for e in events if e["event"] == "run.degraded")
    assert "the model is down" in degraded["error"]
    assert events[-1]["degraded"] is True
    assert events[-1]["result"] == {"answer": "cached (because the model is down)"}


def test_failing_fallback_fails_the_run_naming_both_errors(project, clock):
    """When fallback() fails too, the run fails and the line names both failures."""
    project.add_agent("agent", FALLBACK)
    outcome = project.run(clock=clock, overrides={"fallback_fails": "true"})
    assert outcome.exit_code == 1
    assert "the model is down" in outcome.message
    assert "no cached answer either" in outcome.message


DRAFTER = agent_source(
    """
    ctx.state["drafts"] = ctx.state.get("drafts", 0) + 1
    return Result(reply="Thanks, refund approved.", confidence=params.confidence)
    """,
    params="confidence: float | None = None",
    result="""
    reply: str
    confidence: float | None
    """,
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        ctx.action(
            "send",
            key=ctx.run_id,
            do=lambda: (ctx.home / "sent").open("a").write(result.reply + "\\n"),
        )
    """,
)


def sent(project):
    path = project.home / "sent"
    return path.read_text().splitlines() if path.exists() else []


def test_confident_result_is_applied_at_once(project, clock):
    """At or above auto_threshold, apply() runs in the same run."""
    project.add_agent("agent", DRAFTER)
    outcome = project.run(clock=clock, overrides={"confidence": "0.9"})
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    assert sent(project) == ["Thanks, refund approved."]
    assert project.state("agent")["review"] == []


def test_a_result_without_confidence_is_applied(project, clock):
    """A Result whose confidence is None is not routed: apply() runs."""
    project.add_agent("agent", DRAFTER)
    assert project.run(clock=clock).exit_code == 0
    assert sent(project) == ["Thanks, refund approved."]


def test_unsure_result_is_held_then_approved(project, clock):
    """Between the thresholds: held (exit 0, nothing sent); approving applies it once."""
    project.add_agent("agent", DRAFTER)
    outcome = project.run(clock=clock, overrides={"confidence": "0.6"})
    assert (outcome.status, outcome.exit_code) == ("held", 0)
    assert sent(project) == []
    state = project.state("agent")
    assert state["metrics"]["held"] == 1
    assert state["data"] == {"drafts": 1}, "the drafting run's state is kept"
    [held] = state["review"]
    assert held["id"] == outcome.run_id
    assert held["confidence"] == 0.6
    assert held["escalated"] is False
    assert held["result"] == {"reply": "Thanks, refund approved.", "confidence": 0.6}

    approved = approve_held(AgentopsProject(project.home), "agent", held["id"], environ={})
    assert approved.exit_code == 0
    assert sent(project) == ["Thanks, refund approved."]
    assert project.state("agent")["review"] == []
    assert "review.approved" in project.event_names("agent")
    again = approve_held(AgentopsProject(project.home), "agent", held["id"], environ={})
    assert again.exit_code == 2, "an approved result is no longer held"
    assert sent(project) == ["Thanks, refund approved."]


def test_low_confidence_is_escalated_loudly(project, clock):
    """Below review_threshold: exit 1 with a line saying so, held for a human."""
    project.add_agent("agent", DRAFTER, "[guard]\nauto_threshold = 0.9\nreview_threshold = 0.4\n")
    outcome = project.run(clock=clock, overrides={"confidence": "0.2"})
    assert (outcome.status, outcome.exit_code) == ("escalated", 1)
    assert "confidence 0.2 is below review_threshold 0.4" in outcome.message
    assert sent(project) == []
    state = project.state("agent")
    assert state["review"][0]["escalated"] is True
    assert state["metrics"]["escalated"] == 1
    assert state["circuit"]["state"] == "closed", "escalation is not a failure"


def test_rejecting_a_held_result_drops_it_unapplied(project, clock):
    """review reject removes the held result without calling apply()."""
    project.add_agent("agent", DRAFTER)
    outcome = project.run(clock=clock, overrides={"confidence": "0.6"})
    rejected = admin.reject_held(
        AgentopsProject(project.home), "agent", outcome.run_id, reason="wrong customer"
    )
    assert rejected.exit_code == 0
    assert project.state("agent")["review"] == []
    assert sent(project) == []
    event = next(e for e in project.events("agent") if e["event"] == "review.rejected")
    assert event["reason"] == "wrong customer"


def test_without_apply_confidence_is_only_data(project, clock):
    """An agent with no apply() hook is never held, whatever its confidence."""
    project.add_agent("agent", DRAFTER.split("def apply", maxsplit=1)[0])
    outcome = project.run(clock=clock, overrides={"confidence": "0.1"})
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    assert project.state("agent")["review"] == []


def test_review_commands(project, invoke):
    """review list shows held results of every agent; approve and reject act on them."""
    project.add_agent("drafter", DRAFTER)
    for confidence in ("0.6", "0.7"):
        assert invoke("run", "drafter", "-p", f"confidence={confidence}").exit_code == 0
    rows = json.loads(invoke("review", "list", "--json").output)
    assert [(r["agent"], r["confidence"]) for r in rows] == [("drafter", 0.6), ("drafter", 0.7)]
    table = invoke("review", "list").output.splitlines()
    assert table[0].split()[:3] == ["AGENT", "ID", "AT"]
    assert len(table) == 3
    approve = invoke("review", "approve", "drafter", rows[0]["id"])
    assert approve.exit_code == 0
    assert approve.output == f"drafter: {rows[0]['id']} approved and applied\n"
    reject = invoke("review", "reject", "drafter", rows[1]["id"], "--reason", "tone")
    assert reject.exit_code == 0
    assert invoke("review", "list").output == "no results are held for review\n"
    assert sent(project) == ["Thanks, refund approved."]
    unknown = invoke("review", "approve", "drafter", "nope")
    assert unknown.exit_code == 2
    assert "holds no result 'nope'" in unknown.output


# -- the output gate: a rejected output is rolled back ----------------------------------

ROLLBACK_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    accept: bool = False

class Result(BaseModel):
    keys: list[str]

def _append(path, line):
    with path.open("a") as f:
        f.write(line + "\\n")

def _do(ctx, key):
    _append(ctx.home / "effects.txt", f"do {key}")
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    for key in ("a", "b", "c"):
        ctx.action(
            "write",
            key=key,
            do=lambda key=key: _do(ctx, key),
            undo=lambda result: _append(ctx.home / "undo.txt", f"undo {result['key']}"),
        )
    return Result(keys=["a", "b", "c"])

def validate(result: Result, ctx: Context) -> None:
    if not ctx.params.accept:
        raise ValueError("the editor said no")
"""


def test_rejected_output_undoes_actions_newest_first(project, invoke):
    """validate() raises: exit 65, undo c, b, a in that order, ledger undone; then redone."""
    project.add_agent("writer", ROLLBACK_AGENT)
    first = invoke("run", "writer")
    assert first.exit_code == 65
    assert "output rejected by validate(): the editor said no" in one_line(first, project, "writer")
    assert (project.home / "undo.txt").read_text().splitlines() == ["undo c", "undo b", "undo a"]
    state = project.state("writer")
    assert state["last_run"]["status"] == "rejected"
    assert {
        k: Entry.parse(e).status for k, e in project.ledger("writer")["write"].items()
    } == dict.fromkeys("abc", "undone")
    assert [e["key"] for e in logged(project, "writer", "action.undone")] == ["c", "b", "a"]

    second = invoke("run", "writer", "-p", "accept=true")
    assert (second.exit_code, second.stderr) == (0, "")
    state = project.state("writer")
    assert {
        k: Entry.parse(e).status for k, e in project.ledger("writer")["write"].items()
    } == dict.fromkeys("abc", "committed")
    assert (project.home / "effects.txt").read_text().splitlines() == [
        "do a",
        "do b",
        "do c",
        "do a",
        "do b",
        "do c",
    ]
    assert len((project.home / "undo.txt").read_text().splitlines()) == 3, "nothing undone again"


# -- confidences that are not numbers, apply() and its absence -----------------------------


LOOSE_DRAFTER = agent_source(
    """
    ctx.state["drafted"] = True
    try:
        confidence = float(params.confidence)
    except (TypeError, ValueError):
        confidence = params.confidence  # "high": not a number at all
    return Result(confidence=confidence)
    """,
    params="confidence: str | None = None",
    result="confidence: float | str | None",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        ctx.state["applied"] = ctx.state.get("applied", 0) + 1
    """,
)


@pytest.mark.parametrize("confidence", ["nan", "1.5", "-0.1", "high"])
def test_a_confidence_that_is_not_a_probability_is_rejected(project, clock, confidence):
    """NaN, out of range or text: the output is rejected (65), never applied."""
    project.add_agent("agent", LOOSE_DRAFTER)
    outcome = project.run(clock=clock, overrides={"confidence": confidence})
    assert outcome.exit_code == 65
    expected = (
        "NaN or an infinity" if confidence == "nan" else "confidence must be a number from 0 to 1"
    )
    assert expected in outcome.message
    assert "applied" not in project.state("agent")["data"]


def test_what_apply_keeps_in_ctx_state_is_saved(project, clock):
    """apply() writing ctx.state: kept after an automatic apply and after an approval."""
    project.add_agent("agent", LOOSE_DRAFTER)
    assert project.run(clock=clock, overrides={"confidence": "0.99"}).exit_code == 0
    assert project.state("agent")["data"] == {"drafted": True, "applied": 1}
    held = project.run(clock=clock, overrides={"confidence": "0.6"})
    assert held.status == "held"
    approved = approve_held(AgentopsProject(project.home), "agent", held.run_id, environ={})
    assert approved.exit_code == 0
    assert project.state("agent")["data"] == {"drafted": True, "applied": 2}


def test_approving_without_apply_is_a_configuration_error(project, clock):
    """If apply() is gone, approving applies nothing: exit 78, the result stays held."""
    project.add_agent("agent", LOOSE_DRAFTER)
    held = project.run(clock=clock, overrides={"confidence": "0.6"})
    project.add_agent("agent", LOOSE_DRAFTER.split("def apply", maxsplit=1)[0])
    approved = approve_held(AgentopsProject(project.home), "agent", held.run_id, environ={})
    assert approved.exit_code == 78
    assert "no apply()" in approved.message
    assert len(project.state("agent")["review"]) == 1
