"""The exception tree: drawn in errors.py's docstring, and each error knows its exit code.

The drawing is the documentation: parsed here, it must be the classes as they
are (each one's parent and exit code), and every public error must be in it.
"""

from __future__ import annotations

import re

import pytest

from agentops import errors
from agentops.errors import AgentOpsError, Rejected, TransientError
from agentops.model.status import ExitCode, RunStatus

LINE = re.compile(r"^    (?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w+)\s+(?P<code>\d+)?")


def drawing() -> dict[str, tuple[str | None, int | None]]:
    """Class name -> (its parent in the drawing, its exit code there)."""
    drawn: dict[str, tuple[str | None, int | None]] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 4
        del parents[depth:]
        code = int(match["code"]) if match["code"] else None
        drawn[match["name"]] = (parents[-1] if parents else None, code)
        parents.append(match["name"])
    return drawn


DRAWN = drawing()


def test_the_drawing_names_every_public_error():
    """Each name in errors.__all__ is drawn, once, and nothing else is."""
    assert set(DRAWN) == set(errors.__all__)


@pytest.mark.parametrize("name", sorted(DRAWN))
def test_each_error_has_the_parent_and_exit_code_it_is_drawn_with(name):
    """The tree is the classes': the parent drawn is an ancestor, the code its exit_code."""
    parent, code = DRAWN[name]
    cls = getattr(errors, name)
    if parent is None:
        assert cls.__bases__ == (Exception,)
    else:
        assert issubclass(cls, getattr(errors, parent))
    if issubclass(cls, AgentOpsError):
        assert code is not None
        assert cls.exit_code == code
        assert cls.exit_code in set(ExitCode)
    else:
        assert code is None, "raised to or by agents: no exit code of their own"


def test_agentops_errors_carry_a_status_the_state_file_knows():
    """Every AgentOpsError maps to a RunStatus; those that stop a run before it starts abort it."""
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, AgentOpsError):
            assert cls.status in set(RunStatus)
    assert errors.UsageError.status is RunStatus.ABORTED
    assert errors.ConfigError.status is RunStatus.ABORTED
    assert errors.StateError.status is RunStatus.ABORTED


def test_a_message_is_one_line_and_names_its_agent():
    """Newlines and runs of spaces in a message become single spaces: cron mails one line."""
    error = errors.ConfigError("bad\n  agent.toml:\tline 3", agent="hello")
    assert error.message == str(error) == "bad agent.toml: line 3"
    assert error.agent == "hello"


def test_rejections_keep_each_problem_and_waits_keep_their_seconds():
    """What the log needs beside the line: validation errors, a retry's wait."""
    rejected = errors.ParamsRejected("params rejected", errors=["n: too big"])
    assert isinstance(rejected, Rejected)
    assert rejected.errors == ["n: too big"]
    assert errors.OutputRejected("no").errors == []
    limited = errors.RateLimited("later", retry_after_s=30.0)
    assert limited.retry_after_s == 30.0
    assert TransientError("busy").retry_after_s is None
    assert TransientError("busy", retry_after_s=5).retry_after_s == 5


def test_skips_say_why_in_the_words_of_the_log():
    """Each Skipped subclass has the SkipReason run.skipped logs."""
    reasons = {
        errors.Overlap: "overlap",
        errors.Paused: "paused",
        errors.TickTaken: "tick_taken",
        errors.RateLimited: "rate_limit",
        errors.CircuitOpen: "circuit_open",
        errors.BudgetExhausted: "budget",
        errors.BudgetExceeded: "budget",
        errors.ActionRateLimited: "action_rate_limit",
    }
    assert {cls: cls.reason.value for cls in reasons} == reasons
