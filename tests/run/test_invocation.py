"""One invocation: errors turned into outcomes, the attempt's trace, a run or an operator's edit.

Each test hands :meth:`Invocation.run` a body of its own, so what is checked
is the invocation's share: what it logs, what it leaves in the store, what
it raises.
"""

from __future__ import annotations

import sys

import pytest

from agentops._infra.stderr import real_stderr
from agentops.errors import ConfigError, Overlap, UnknownAgent
from agentops.model.status import RunStatus
from agentops.project.home import Project as Home
from agentops.run.invocation import Invocation
from agentops.run.options import RunOptions
from leakscan import FAKE_SECRETS


@pytest.fixture
def invocation(project, clock):
    """An invocation for the agent "hello", as a run, on the fake clock, with no environment."""
    project.add_agent("hello")

    def make(**options) -> Invocation:
        options = {"clock": clock, "environ": {}, **options}
        return Invocation(Home(project.home), "hello", RunOptions(**options))

    return make


def attempt_path(project):
    return project.home / "state" / "hello.attempt.json"


def raising(exc: BaseException):
    def body():
        raise exc

    return body


def test_a_body_that_ends_well_gives_its_outcome_and_leaves_a_trace(project, invocation):
    """The body's outcome comes back; the attempt (when, how it ended) is in the store."""
    run = invocation()
    outcome = run.run(lambda: run.outcome(RunStatus.SUCCEEDED, 0, "done"))
    assert (outcome.agent, outcome.status, outcome.exit_code) == ("hello", "succeeded", 0)
    assert outcome.log_path == project.log_path("hello")
    assert attempt_path(project).exists()


def test_a_skip_is_logged_as_skipped_and_a_refusal_as_aborted(project, invocation):
    """Overlap: run.skipped reason=overlap, exit 75; a config error: run.aborted, exit 78."""
    skipped = invocation().run(raising(Overlap("hello is already running", agent="hello")))
    assert (skipped.status, skipped.exit_code, skipped.reason) == ("skipped", 75, "overlap")
    aborted = invocation().run(raising(ConfigError("agent.toml: bad", agent="hello")))
    assert (aborted.status, aborted.exit_code) == ("aborted", 78)
    assert [e["event"] for e in project.events("hello")] == ["run.skipped", "run.aborted"]
    assert project.events("hello")[0]["reason"] == "overlap"


def test_an_operators_edit_refused_logs_no_run_and_leaves_no_attempt(project, invocation):
    """Not a run: command.refused, and the last attempt is not an edit's."""
    refused = invocation().run(raising(Overlap("busy", agent="hello")), attempt=False)
    assert refused.exit_code == 75
    assert project.event_names("hello") == ["command.refused"]
    assert not attempt_path(project).exists()


def test_a_dry_run_leaves_no_attempt(project, invocation):
    """A dry run is not how the agent was last tried."""
    run = invocation(dry_run=True)
    run.run(lambda: run.outcome(RunStatus.SUCCEEDED, 0, "done"))
    assert not attempt_path(project).exists()


def test_an_unknown_agent_is_raised_and_a_bug_is_logged_then_raised(project, invocation):
    """UnknownAgent is for the caller to say; an unexpected error is run.crashed, then raised."""
    with pytest.raises(UnknownAgent):
        invocation().run(raising(UnknownAgent("no agent 'hello'", agent="hello")))
    with pytest.raises(ZeroDivisionError):
        invocation().run(raising(ZeroDivisionError("a bug")))
    assert project.event_names("hello")[-1] == "run.crashed"


def test_the_message_of_an_outcome_is_redacted(invocation):
    """The one line cron mails never holds a secret of the environment."""
    secret = FAKE_SECRETS["FAKE_OPENAI_KEY"]
    run = invocation(environ={"FAKE_OPENAI_KEY": secret})
    outcome = run.run(raising(ConfigError(f"refused key {secret}", agent="hello")))
    assert secret not in outcome.message
    assert "[REDACTED]" in outcome.message


@pytest.mark.parametrize(
    "error", [ConfigError("cannot read the store's location"), RuntimeError("a bug")]
)
def test_a_store_that_fails_as_the_attempt_is_recorded_gives_the_caller_its_streams_back(
    project, invocation, monkeypatch, error
):
    """A store's error is logged and the outcome stands; a bug goes up; the capture is gone."""
    made = invocation()
    assert made.services.options.console is None, "what the run prints is captured"

    def fails(*_args: object) -> None:
        raise error

    monkeypatch.setattr(made.services.store, "record_attempt", fails)
    stdout, stderr = sys.stdout, sys.stderr
    body = lambda: made.outcome(RunStatus.SUCCEEDED, 0, "done")  # noqa: E731
    if isinstance(error, ConfigError):
        assert made.run(body).exit_code == 0
        assert "attempt.not_recorded" in project.event_names("hello")
    else:
        with pytest.raises(RuntimeError, match="a bug"):
            made.run(body)
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert real_stderr() is sys.stderr
