"""How one invocation ended, as data: which outcomes cron hears of, and which stay quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentops.model.outcome import Outcome
from agentops.model.status import RunStatus

LOG = Path("/srv/agentops/logs/agent.jsonl")


def outcome(status: RunStatus, **fields) -> Outcome:
    exit_code = fields.pop("exit_code", 2 if status is RunStatus.ABORTED else status.exit_code)
    return Outcome("agent", "run-1", status, exit_code, "why", LOG, **fields)


@pytest.mark.parametrize(
    "status", [RunStatus.SUCCEEDED, RunStatus.HELD, RunStatus.SKIPPED, RunStatus.RATE_LIMITED]
)
def test_success_and_skips_are_quiet(status):
    """Exit 0 or 75 prints nothing under cron."""
    assert outcome(status).quiet


@pytest.mark.parametrize(
    "status",
    [
        RunStatus.FAILED,
        RunStatus.TIMEOUT,
        RunStatus.REJECTED,
        RunStatus.ESCALATED,
        RunStatus.ABORTED,
    ],
)
def test_failures_are_said(status):
    """Any other exit code mails a human, once."""
    assert not outcome(status).quiet


def test_a_run_that_opens_the_circuit_or_hits_a_budget_says_so_once():
    """Exceptions among 1 and 75: the run that changes things speaks, the skips after do not."""
    assert not outcome(RunStatus.FAILED, circuit="opened").quiet
    assert not outcome(RunStatus.BUDGET_EXCEEDED).quiet
    assert outcome(RunStatus.SUCCEEDED, circuit="closed").quiet


def test_an_outcome_is_a_value_with_defaults_for_what_did_not_happen():
    """A run that never started spent nothing, changed no circuit and has no times."""
    skipped = outcome(RunStatus.SKIPPED, reason="overlap")
    assert (skipped.spent_usd, skipped.tokens, skipped.circuit) == (0.0, 0, None)
    assert (skipped.started_at, skipped.finished_at, skipped.duration_s) == (None, None, None)
    assert skipped._replace(reason="paused").reason == "paused"
    assert skipped.reason == "overlap"
