"""Notifications by incident: a problem after a recovery is news, a repeat within one is not.

End to end through the real ``agentops`` executable and a webhook on
loopback where the order of runs is what matters, and on the policy alone
(a :class:`~agentops.testing.FakeClock`, a real file store) where time must move.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentops._infra.log import EventLogger
from agentops.model.outcome import Outcome
from agentops.model.status import RunStatus
from agentops.notify.policy import Due, NotifyPolicy
from agentops.notify.slow import Slow
from agentops.project.config import Notify
from agentops.store import Notices
from agentops.store.file import FileStore
from agentops.testing import FakeClock
from webhookserver import Webhook

if TYPE_CHECKING:
    from collections.abc import Iterator

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    fail: bool = False

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result()
"""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook on loopback, stopped at the end of the test."""
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


def test_fail_recover_fail_sends_three_messages(project, run_agentops, webhook):
    """Within the cooldown (1h): failure, recovered, and the second incident's failure at once."""
    project.add_agent("agent", AGENT, "[circuit]\nfailures = 5\n")
    (project.home / "agentops.toml").write_text(
        f'[notify]\nwebhooks = ["{webhook.url()}"]\ncooldown = "1h"\n'
    )
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    assert run_agentops("run", "agent").returncode == 0
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    assert webhook.kinds() == ["failure", "recovered", "failure"]
    assert [m["text"] for m in webhook.messages()] == [
        "agentops [failure] agent: run() raised RuntimeError: the feed is down",
        "agentops [recovered] agent: recovered",
        "agentops [failure] agent: run() raised RuntimeError: the feed is down",
    ]
    # The same incident goes on: its repeat waits for the cooldown, its end is told.
    assert run_agentops("run", "agent", "-p", "fail=true").returncode == 1
    assert run_agentops("run", "agent").returncode == 0
    assert webhook.kinds() == ["failure", "recovered", "failure", "recovered"]


# -- the policy alone --------------------------------------------------------------------


class Setting:
    """One agent's policy over a file store, rebuilt for each run as a run builds it."""

    def __init__(self, tmp_path: Path, **notify: Any) -> None:
        (tmp_path / "state").mkdir()
        self.store = FileStore(tmp_path / "state")
        self.config = Notify(cooldown="10m", **notify)
        self.clock = FakeClock()
        self.told: list[Due] = []
        self.cooled: list[str] = []
        self.delivered = True

    def _tell(self, due: Due) -> bool:
        self.told.append(due)
        return self.delivered

    def _emit(self, level: str, event: str | None, fields: dict[str, Any], **_: Any) -> None:
        del level
        if event == "notify.cooled_down":
            self.cooled.append(fields["kind"])

    def policy(self) -> NotifyPolicy:
        log = EventLogger(self._emit, {})
        return NotifyPolicy(self.config, self.store, clock=self.clock, log=log)

    def run(self, status: RunStatus, *, slow: Slow | None = None, **fields: Any) -> None:
        outcome = Outcome(
            agent="agent",
            run_id="run-1",
            status=status,
            exit_code=0 if status.ok else 1,
            message=f"agent: {status}",
            log_path=Path("logs/agent.jsonl"),
            **fields,
        )
        self.policy().after_run(outcome, self._tell, slow=slow)

    def stale(self) -> None:
        self.policy().stale("agent", "no successful run since the tick at 12:00", self._tell)

    def kinds(self) -> list[str]:
        return [due.kind for due in self.told]


@pytest.fixture
def setting(tmp_path: Path) -> Setting:
    return Setting(tmp_path)


def test_a_repeat_within_an_incident_waits_for_the_cooldown(setting):
    """Failures 1m apart in one incident: one message; after 10m of it, a reminder."""
    setting.run(RunStatus.FAILED)
    setting.clock.advance(minutes=1)
    setting.run(RunStatus.FAILED)
    assert (setting.kinds(), setting.cooled) == (["failure"], ["failure"])
    setting.clock.advance(minutes=9)
    setting.run(RunStatus.FAILED)
    assert setting.kinds() == ["failure", "failure"]


def test_stale_is_told_by_incident_too(setting):
    """stale, recovered, then stale again a minute on: told at once; its repeat waits."""
    setting.stale()
    setting.clock.advance(minutes=1)
    setting.run(RunStatus.SUCCEEDED)
    setting.clock.advance(minutes=1)
    setting.stale()
    setting.stale()
    assert setting.kinds() == ["stale", "recovered", "stale"]
    assert setting.cooled == ["stale"]


def test_recovered_is_told_only_for_an_incident_people_heard_of(setting):
    """A failure nobody heard (no channel delivered it): its success tells no `recovered`."""
    setting.delivered = False
    setting.run(RunStatus.FAILED)
    setting.delivered = True
    setting.run(RunStatus.SUCCEEDED)
    assert setting.kinds() == ["failure"]
    assert setting.store.notices("agent") is None


def test_without_recovered_in_on_a_success_ends_the_incident_untold(tmp_path):
    """on = ["failure"]: no `recovered`, but the failure after a success is a new incident."""
    setting = Setting(tmp_path, on=["failure"])
    setting.run(RunStatus.FAILED)
    setting.run(RunStatus.SUCCEEDED)
    setting.clock.advance(minutes=1)
    setting.run(RunStatus.FAILED)
    assert setting.kinds() == ["failure", "failure"]


def test_slow_is_a_notice_in_no_incident(setting):
    """A slow success: told, opens nothing (no `recovered` follows); a second waits 10m."""
    slow = Slow("run-1", 700.0, 300.0, "expected_duration")
    setting.run(RunStatus.SUCCEEDED, slow=slow)
    setting.run(RunStatus.SUCCEEDED)
    setting.clock.advance(minutes=5)
    setting.run(RunStatus.SUCCEEDED, slow=slow)
    assert setting.kinds() == ["slow"]
    assert setting.told[0].text == "agent: slow: took 11m40s, longer than 5m (expected_duration)"
    notices = setting.store.notices("agent")
    assert notices is not None
    assert notices.open == []
    setting.clock.advance(minutes=5)
    setting.run(RunStatus.SUCCEEDED, slow=slow)
    assert setting.kinds() == ["slow", "slow"]


def test_a_slow_recovery_tells_both(setting):
    """A failure, then a success that was slow: `recovered`, then `slow`."""
    setting.run(RunStatus.FAILED)
    setting.run(RunStatus.SUCCEEDED, slow=Slow("run-1", 700.0, 300.0, "expected_duration"))
    assert setting.kinds() == ["failure", "recovered", "slow"]


def test_notices_an_older_agentops_wrote_load_and_their_incident_goes_on(setting):
    """{sent, open} as written before incidents: the open failure's repeat waits, as it did."""
    at = setting.clock()
    path = Path(setting.store.path("agent", ".notices.json"))
    path.write_text(json.dumps({"sent": {"failure": at.isoformat()}, "open": ["failure"]}))
    assert setting.store.notices("agent") == Notices(sent={"failure": at}, open=["failure"])
    setting.clock.advance(minutes=1)
    setting.run(RunStatus.FAILED)
    setting.run(RunStatus.SUCCEEDED)
    assert setting.kinds() == ["recovered"]
