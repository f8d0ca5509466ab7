"""The notification policy on its own: what is due, when, and what is remembered.

No channel and no HTTP: the policy hands what is due to a ``tell`` function
that records it and answers whether it was delivered; the notices live in a
real :class:`~agentops.store.file.FileStore` on ``tmp_path``, so that each
check builds a new policy, as each run does.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agentops._infra.log import EventLogger
from agentops.model.outcome import Outcome
from agentops.model.status import RunStatus
from agentops.notify.policy import Due, NotifyPolicy, kinds_of
from agentops.project.config import Notify
from agentops.store import Notices
from agentops.store.file import FileStore
from agentops.testing import FakeClock


class Lines:
    """An event logger's lines, kept in memory."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.log = EventLogger(self._emit, {"agent": "agent"})

    def _emit(self, level: str, event: str | None, fields: dict[str, Any], *, redacted: bool):
        del redacted
        self.lines.append({"level": level, "event": event, **fields})

    def named(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == event]


class Teller:
    """A ``tell`` that keeps what it is handed, and answers ``delivered``."""

    def __init__(self) -> None:
        self.told: list[Due] = []
        self.delivered = True

    def __call__(self, due: Due) -> bool:
        self.told.append(due)
        return self.delivered

    def kinds(self) -> list[str]:
        return [due.kind for due in self.told]


class Setting:
    """One agent's policy over a file store, rebuilt for each run as a run builds it."""

    def __init__(self, tmp_path: Path, **notify: Any) -> None:
        self.store = FileStore(tmp_path / "state")
        (tmp_path / "state").mkdir()
        self.config = Notify(**notify)
        self.clock = FakeClock()
        self.logs = Lines()
        self.tell = Teller()

    def policy(self) -> NotifyPolicy:
        return NotifyPolicy(self.config, self.store, clock=self.clock, log=self.logs.log)

    def after_run(self, status: RunStatus, **fields: Any) -> None:
        self.policy().after_run(outcome(status, **fields), self.tell)

    def stale(self, why: str = "no run since 12:00") -> None:
        self.policy().stale("agent", why, self.tell)

    def notices(self) -> Notices | None:
        return self.store.notices("agent")


def outcome(status: RunStatus, **fields: Any) -> Outcome:
    """An outcome of the agent ``agent`` ending with ``status``."""
    values: dict[str, Any] = {
        "agent": "agent",
        "run_id": "run-1",
        "status": status,
        "exit_code": 0 if status.ok else 1,
        "message": f"agent: {status}",
        "log_path": Path("logs/agent.jsonl"),
        **fields,
    }
    return Outcome(**values)


@pytest.fixture
def setting(tmp_path: Path) -> Setting:
    return Setting(tmp_path, cooldown="10m")


# -- what an outcome is worth telling ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fields", "kinds"),
    [
        (RunStatus.SUCCEEDED, {}, []),
        (RunStatus.HELD, {}, []),
        (RunStatus.SKIPPED, {"reason": "overlap"}, []),
        (RunStatus.RATE_LIMITED, {}, []),
        (RunStatus.FAILED, {}, ["failure"]),
        (RunStatus.TIMEOUT, {}, ["failure"]),
        (RunStatus.CRASHED, {}, ["failure"]),
        (RunStatus.REJECTED, {}, ["failure"]),
        (RunStatus.ABORTED, {}, ["failure"]),
        (RunStatus.ESCALATED, {}, ["escalated"]),
        (RunStatus.BUDGET_EXCEEDED, {}, ["budget"]),
        (RunStatus.FAILED, {"reason": "budget"}, ["budget"]),
        (RunStatus.FAILED, {"circuit": "opened"}, ["circuit_open", "failure"]),
        (RunStatus.SKIPPED, {"circuit": "opened"}, ["circuit_open"]),
    ],
)
def test_kinds_of_an_outcome(status, fields, kinds):
    """Each ending maps to the kinds README's table gives it, the circuit's opening first."""
    assert kinds_of(outcome(status, **fields)) == kinds


# -- the cooldown ------------------------------------------------------------------------


def test_a_failure_is_due_with_the_runs_facts_and_the_time(setting):
    """The first failure is handed over at once, unredacted, with its outcome and the time."""
    setting.after_run(RunStatus.FAILED, message="agent: the feed is down")
    [due] = setting.tell.told
    assert (due.agent, due.kind, due.text) == ("agent", "failure", "agent: the feed is down")
    assert due.outcome is not None
    assert due.outcome.run_id == "run-1"
    assert due.at == setting.clock()
    assert setting.notices() == Notices(sent={"failure": setting.clock()}, open=["failure"])


def test_the_cooldown_counts_from_the_last_delivery(setting):
    """cooldown 10m: a failure 9m after one told is held back (and logged), one at 10m is told."""
    setting.after_run(RunStatus.FAILED)
    first = setting.clock()
    setting.clock.advance(minutes=9)
    setting.after_run(RunStatus.FAILED)
    assert setting.tell.kinds() == ["failure"]
    [cooled] = setting.logs.named("notify.cooled_down")
    assert (cooled["kind"], cooled["last"]) == ("failure", "2026-01-01T00:00:00Z")
    setting.clock.advance(minutes=1)
    setting.after_run(RunStatus.FAILED)
    assert setting.tell.kinds() == ["failure", "failure"]
    assert setting.tell.told[1].at == first + timedelta(minutes=10)


def test_the_cooldown_is_per_kind(setting):
    """A failure just told does not hold back the circuit opening a minute later."""
    setting.after_run(RunStatus.FAILED)
    setting.clock.advance(minutes=1)
    setting.after_run(RunStatus.FAILED, circuit="opened")
    assert setting.tell.kinds() == ["failure", "circuit_open"]
    notices = setting.notices()
    assert notices is not None
    assert notices.open == ["circuit_open", "failure"]


def test_what_nobody_heard_is_neither_cooled_down_nor_open(setting):
    """No channel delivered: nothing is kept, and the next failure is handed over again."""
    setting.tell.delivered = False
    setting.after_run(RunStatus.FAILED)
    assert setting.notices() is None
    setting.after_run(RunStatus.FAILED)
    assert setting.tell.kinds() == ["failure", "failure"]
    setting.after_run(RunStatus.SUCCEEDED)
    assert setting.tell.kinds() == ["failure", "failure"], "nobody waits to hear it recovered"


def test_on_chooses_the_kinds_handed_over(tmp_path):
    """on = ["circuit_open"]: a failure is not due, and nothing is logged about it."""
    setting = Setting(tmp_path, on=["circuit_open"])
    setting.after_run(RunStatus.FAILED)
    setting.after_run(RunStatus.FAILED, circuit="opened")
    assert setting.tell.kinds() == ["circuit_open"]
    assert setting.logs.lines == []


# -- recovered ---------------------------------------------------------------------------


def test_recovered_answers_what_was_told_once_at_once(setting):
    """A success a minute after a told failure: `recovered` at once, then nothing more."""
    setting.after_run(RunStatus.FAILED)
    setting.clock.advance(minutes=1)
    setting.after_run(RunStatus.SUCCEEDED)
    setting.after_run(RunStatus.HELD)
    assert setting.tell.kinds() == ["failure", "recovered"]
    recovered = setting.tell.told[1]
    assert recovered.text == "agent: recovered"
    assert recovered.outcome is not None
    assert recovered.outcome.status == RunStatus.SUCCEEDED
    notices = setting.notices()
    assert notices is not None
    assert notices.open == []


def test_recovered_is_not_cooled_down(setting):
    """Two incidents a minute apart each get their `recovered`, whatever the cooldown."""
    setting.after_run(RunStatus.FAILED)
    setting.after_run(RunStatus.SUCCEEDED)
    setting.clock.advance(minutes=1)
    setting.after_run(RunStatus.FAILED, circuit="opened")  # a new incident: both told at once
    setting.after_run(RunStatus.SUCCEEDED)
    assert setting.tell.kinds() == [
        "failure",
        "recovered",
        "circuit_open",
        "failure",
        "recovered",
    ]


def test_a_recovered_nobody_heard_is_tried_again(setting):
    """`recovered` not delivered: the problem stays open, and the next success tells it."""
    setting.after_run(RunStatus.FAILED)
    setting.tell.delivered = False
    setting.after_run(RunStatus.SUCCEEDED)
    setting.tell.delivered = True
    setting.after_run(RunStatus.SUCCEEDED)
    assert setting.tell.kinds() == ["failure", "recovered", "recovered"]


def test_successes_alone_tell_nothing(setting):
    """No problem was told: a success hands nothing over and keeps nothing."""
    setting.after_run(RunStatus.SUCCEEDED)
    assert setting.tell.told == []
    assert setting.notices() is None


# -- stale ------------------------------------------------------------------------------


def test_stale_is_told_with_no_run_and_answered_by_a_success(setting):
    """The watchdog's `stale` carries no outcome; the agent's next success tells `recovered`."""
    setting.stale("no successful run since the tick at 12:00")
    [stale] = setting.tell.told
    assert (stale.kind, stale.text, stale.outcome) == (
        "stale",
        "agent: stale: no successful run since the tick at 12:00",
        None,
    )
    setting.stale()
    assert setting.tell.kinds() == ["stale"]
    setting.after_run(RunStatus.SUCCEEDED)
    assert setting.tell.kinds() == ["stale", "recovered"]


# -- notices the store cannot keep -------------------------------------------------------


class BrokenStore:
    """A store whose notices cannot be read, or cannot be written."""

    def __init__(self, *, read: bool, write: bool) -> None:
        self.read, self.write = read, write

    def notices(self, name: str) -> Notices | None:
        if not self.read:
            raise OSError(f"cannot read the notices of {name}")
        return None

    def set_notices(self, name: str, notices: Notices) -> None:
        del notices
        if not self.write:
            raise OSError(f"cannot write the notices of {name}")


@pytest.mark.parametrize(
    ("read", "write", "event"),
    [
        (False, True, "notify.notices_unreadable"),
        (True, False, "notify.notices_not_kept"),
    ],
)
def test_notices_the_store_cannot_keep_are_logged_and_the_message_still_goes(
    setting, read, write, event
):
    """Unreadable or unwritable notices: one warning, the failure still handed over."""
    policy = NotifyPolicy(
        setting.config,
        BrokenStore(read=read, write=write),
        clock=setting.clock,
        log=setting.logs.log,
    )
    policy.after_run(outcome(RunStatus.FAILED), setting.tell)
    assert setting.tell.kinds() == ["failure"]
    [warning] = setting.logs.named(event)
    assert warning["level"] == "warning"
    assert "cannot" in warning["error"]
