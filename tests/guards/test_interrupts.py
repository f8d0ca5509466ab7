"""The timeout and termination signals, turned into a clean stop of agent code.

The unit tests signal the test's own process (``os.kill(os.getpid(), ...)``)
and wait on an event that never comes: the stop ends the wait, however long
the machine takes to deliver it. The runs are in-process, against a server
on loopback that answers too late; their timeouts are seconds, many times
what the work before them takes, so a busy machine does not change what happens.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from agentops.errors import Interrupted, RunTimeout
from agentops.guards.interrupts import MAX_GRACE_S, MIN_GRACE_S, RunInterrupts, StopRun, grace_s
from agentops.model.ledger import Entry
from faultserver import SilentServer, too_many
from suite import add_http_agent, agent_source

HANG_S = 600
"""How long a wait that a stop must end would last: a test that reaches it has failed."""


def never() -> None:
    """Wait for an event that never comes: only a stop ends it."""
    threading.Event().wait(HANG_S)
    pytest.fail("nothing stopped the wait")


# -- the grace -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout_s", "expected"),
    [(0.5, MIN_GRACE_S), (10.0, 10.0), (3600.0, MAX_GRACE_S)],
)
def test_the_grace_is_the_timeout_within_bounds(timeout_s, expected):
    """A stop waits the run's timeout for a side effect in flight, between 2s and 30s."""
    assert grace_s(timeout_s) == expected
    assert RunInterrupts(timeout_s).grace_s == expected


def test_stop_run_is_not_an_exception_agent_code_catches():
    """``except Exception`` in agent code does not swallow a stop."""
    assert not issubclass(StopRun, Exception)


@pytest.mark.parametrize(
    ("reason", "signal_name", "error", "text"),
    [
        ("timeout", "SIGALRM", RunTimeout, "pub: run() passed the timeout of 5s"),
        ("interrupted", "SIGTERM", Interrupted, "pub: run() interrupted by SIGTERM"),
    ],
)
def test_a_stop_becomes_the_error_the_run_ends_with(reason, signal_name, error, text):
    """A timeout is RunTimeout, a signal Interrupted, each naming what was stopped."""
    failed = StopRun(reason, signal_name).error("pub", "run()", 5.0)
    assert isinstance(failed, error)
    assert failed.message == text


# -- signals -------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_armed_agent_code(signum):
    """SIGTERM or SIGINT while agent code runs raises StopRun in it: interrupted."""
    with (  # noqa: PT012 - the signal, then the wait it ends
        RunInterrupts(HANG_S) as interrupts,
        pytest.raises(StopRun) as stopped,
        interrupts.armed(),
    ):
        os.kill(os.getpid(), signum)
        never()
    assert (stopped.value.reason, stopped.value.signal_name) == (
        "interrupted",
        signal.Signals(signum).name,
    )


def test_a_signal_outside_agent_code_is_remembered_and_raised_when_it_runs():
    """Between two calls of agent code a signal only waits: the next call is stopped at once."""
    with RunInterrupts(HANG_S) as interrupts:
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.pending is not None
        with pytest.raises(StopRun), interrupts.armed():
            pytest.fail("agent code ran after the stop")


def test_a_stop_waits_for_the_critical_section_to_end():
    """A signal inside a side effect in flight is raised as the section ends, not inside it."""
    done = []
    with (  # noqa: PT012 - the section, then the wait the stop ends
        RunInterrupts(HANG_S) as interrupts,
        pytest.raises(StopRun),
        interrupts.armed(),
    ):
        with interrupts.critical():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the effect finished")
        never()
    assert done == ["the effect finished"]


def test_the_handlers_are_restored_after_the_run():
    """What handled SIGTERM before the run handles it again after."""
    before = signal.getsignal(signal.SIGTERM)
    with RunInterrupts(HANG_S):
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_process_forked_during_a_run_gets_the_handlers_from_before_it(tmp_path):
    """A SIGTERM to a forked copy ends it: StopRun is never raised into the run's code there."""
    before = signal.getsignal(signal.SIGTERM)
    report = tmp_path / "handler"
    with RunInterrupts(600):
        assert signal.getsignal(signal.SIGTERM) != before
        child = os.fork()
        if child == 0:  # the forked copy: say what it has, then exit at once
            try:
                same = signal.getsignal(signal.SIGTERM) == before
                report.write_text("before" if same else "the run's")
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    assert report.read_text() == "before"


# -- the timeout ---------------------------------------------------------------------------


def test_the_timeout_stops_armed_agent_code():
    """Past the timeout, agent code waiting on anything is stopped: reason timeout."""
    with (
        RunInterrupts(0.05) as interrupts,
        pytest.raises(StopRun) as stopped,
        interrupts.armed(),
    ):
        never()
    assert stopped.value.reason == "timeout"
    assert interrupts.remaining_s() == 0.0


def test_remaining_time_counts_down_from_the_timeout():
    """remaining_s() starts at the timeout and never goes below zero."""
    with RunInterrupts(HANG_S) as interrupts:
        assert 0 < interrupts.remaining_s() <= HANG_S


# -- real runs -----------------------------------------------------------------------------

HANGING_AGENT = agent_source(
    """
    ctx.action("effect", key="before", do=lambda: _effect(ctx.home / "effects.txt", "before"))
    if params.hang:
        ctx.http.get(params.url, timeout=HANG_S)  # a server that never answers in time
    ctx.action("effect", key="after", do=lambda: _effect(ctx.home / "effects.txt", "after"))
    return Result(done=True)
    """,
    params="url: str\nhang: bool = True",
    result="done: bool",
    extra=f"""
    HANG_S = {HANG_S}

    def _effect(path, key):
        with path.open("a") as f:
            f.write(key + "\\n")
        return {{"key": key}}
    """,
)


def test_run_past_its_timeout_stops_and_keeps_committed_work(project, clock):
    """timeout = "5s", an API hanging: status timeout, exit 1; the next run starts and finishes."""
    with SilentServer() as silent:
        toml = f'timeout = "5s"\n[params]\nurl = "{silent.url("/hang")}"\n[retry]\nattempts = 3\n'
        project.add_agent("hang", HANGING_AGENT, toml)
        started = time.monotonic()
        outcome = project.run("hang", clock=clock)
        assert time.monotonic() - started < HANG_S / 2, "the timeout ended the wait"
        assert silent.connections() == 1, "a timeout of the run is not retried"
    assert (outcome.status, outcome.exit_code) == ("timeout", 1)
    assert "passed the timeout of 5s" in outcome.message
    assert Entry.parse(project.ledger("hang")["effect"]["before"]).status == "committed"
    assert not (project.home / "state" / "hang.journal").exists(), "folded into the state"

    again = project.run("hang", clock=clock, overrides={"hang": False})
    assert again.exit_code == 0, again.message
    assert (project.home / "effects.txt").read_text().splitlines() == ["before", "after"]
    ledger = project.ledger("hang")["effect"]
    assert {key: Entry.parse(entry).status for key, entry in ledger.items()} == {
        "before": "committed",
        "after": "committed",
    }


def test_timeout_ends_a_long_retry_after_wait(project, fault_server, clock):
    """timeout = "5s", a 429 asking for 600s: the wait ends at the timeout (status timeout, 1)."""
    url = fault_server.script("/api", too_many(retry_after=HANG_S), too_many(retry_after=0))
    add_http_agent(project, "api", url, max_wait="1h", toml='timeout = "5s"\n')
    started = time.monotonic()
    outcome = project.run("api", clock=clock, sleep=time.sleep)  # a real wait, for the timer
    assert time.monotonic() - started < HANG_S / 2, "the wait was cut short"
    assert (outcome.status, outcome.exit_code) == ("timeout", 1)
    assert "passed the timeout of 5s" in outcome.message
    assert len(fault_server.hits("/api")) == 1
    assert project.state("api")["last_run"]["status"] == "timeout"
