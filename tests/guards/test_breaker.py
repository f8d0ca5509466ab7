"""The circuit breaker: closed -> open after repeated identical failures -> half-open -> closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pydantic import ValidationError

from agentops._infra.log import EventLogger
from agentops.guards import breaker
from agentops.guards.failure import Failure
from agentops.model.state import AgentState, Circuit
from agentops.model.status import RunStatus
from agentops.project.config import CircuitConfig
from faultserver import error, ok
from suite import T0, FakeClock, add_http_agent, logged, one_line

TWICE_HOURLY = CircuitConfig(failures=2, cooldown="1h")


def failure(message: str = "TimeoutError: feed timed out", category: str = "timeout") -> Failure:
    """A classified failure; its fingerprint depends on the category and the wording."""
    return Failure(category, message, transient=True)


FEED_DOWN = failure()
AUTH = failure("PermissionError: key revoked", "permission")


# admit


def test_a_fresh_circuit_is_closed_and_admits(clock):
    """A new circuit lets runs go ahead."""
    circuit = Circuit()
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0
    assert circuit.state == "closed"


def test_one_failure_below_the_threshold_keeps_it_closed(clock):
    """With failures=2, a single failure does not open the circuit."""
    circuit = Circuit()
    assert breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock()) is False
    assert circuit.state == "closed"
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0


def test_the_same_failure_twice_opens_it_for_the_cooldown(clock):
    """The second identical failure opens the circuit until now + cooldown, and says so."""
    circuit = Circuit()
    breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(minutes=10)
    assert breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock()) is True
    assert circuit.state == "open"
    assert circuit.opened_at == clock()
    assert circuit.until == clock() + timedelta(hours=1)
    assert circuit.failures == 2
    assert circuit.fingerprint == FEED_DOWN.fingerprint
    assert circuit.reason == FEED_DOWN.message
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 3600


def test_failures_differing_only_in_numbers_count_as_the_same(clock):
    """Messages differing only in a port or a duration share a fingerprint and trip the circuit."""
    circuit = Circuit()
    first = failure("ConnectionError: refused by 10.0.0.1:8080 after 3.2s", "connection")
    second = failure("ConnectionError: refused by 10.0.0.7:9090 after 12s", "connection")
    breaker.record_failure(circuit, first, TWICE_HOURLY, clock())
    assert breaker.record_failure(circuit, second, TWICE_HOURLY, clock()) is True
    assert circuit.reason == second.message


def test_different_failures_in_a_row_never_open_it(clock):
    """Alternating fingerprints restart the count each time."""
    circuit = Circuit()
    for _ in range(5):
        assert breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock()) is False
        assert breaker.record_failure(circuit, AUTH, TWICE_HOURLY, clock()) is False
    assert circuit.state == "closed"
    assert circuit.failures == 1


def test_a_threshold_of_one_opens_on_the_first_failure(clock):
    """failures=1 opens the circuit on any failure."""
    circuit = Circuit()
    assert breaker.record_failure(circuit, AUTH, CircuitConfig(failures=1), clock()) is True
    assert circuit.state == "open"


def test_admit_counts_down_while_open(clock):
    """While open, admit() returns the seconds left until the cooldown ends."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(minutes=45)
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 15 * 60
    clock.advance(minutes=15, microseconds=-1)
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 1e-6
    assert circuit.state == "open"


def test_after_the_cooldown_it_is_half_open_and_admits_one_trial(clock):
    """At exactly opened_at + cooldown, admit() returns 0 and the circuit is half-open."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(hours=1)
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0
    assert circuit.state == "half_open"
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0  # asking again changes nothing
    assert circuit.state == "half_open"


def test_a_failed_trial_opens_it_again_even_with_a_new_failure(clock):
    """In half-open, any failure (even a different one) reopens it for another cooldown."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(hours=2)
    breaker.admit(circuit, clock(), TWICE_HOURLY)
    assert breaker.record_failure(circuit, AUTH, TWICE_HOURLY, clock()) is True
    assert circuit.state == "open"
    assert circuit.until == clock() + timedelta(hours=1)
    assert circuit.fingerprint == AUTH.fingerprint
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 3600


def test_a_successful_trial_closes_it_and_forgets_the_failures(clock):
    """A success in half-open closes the circuit; the next failure counts from one."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(hours=1)
    breaker.admit(circuit, clock(), TWICE_HOURLY)
    breaker.record_success(circuit)
    assert circuit == Circuit()
    assert breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock()) is False


def test_a_success_between_identical_failures_restarts_the_count(clock):
    """failure, success, failure: never two consecutive identical failures, so closed."""
    circuit = Circuit()
    breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    breaker.record_success(circuit)
    assert breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock()) is False
    assert circuit.state == "closed"


def test_reset_closes_an_open_circuit_by_hand(clock):
    """reset() closes an open circuit at once and clears what it surfaced."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    breaker.reset(circuit)
    assert circuit == Circuit()
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0


def test_a_zero_cooldown_is_refused():
    """cooldown = 0 would make the breaker a no-op: it is a configuration error."""
    with pytest.raises(ValidationError, match="must be longer than zero"):
        CircuitConfig(failures=1, cooldown=0)


def test_a_short_cooldown_is_half_open_once_it_passes(clock):
    """cooldown = 1s opens the circuit and admits the trial run a second later."""
    circuit = Circuit()
    config = CircuitConfig(failures=1, cooldown=1)
    breaker.record_failure(circuit, FEED_DOWN, config, clock())
    assert circuit.state == "open"
    clock.advance(seconds=1)
    assert breaker.admit(circuit, clock(), config) == 0
    assert circuit.state == "half_open"


def test_a_clock_stepped_back_keeps_it_open_one_cooldown_at_most(clock):
    """Opened "tomorrow" by a clock that was then set back a day: it reopens within an hour."""
    circuit = Circuit()
    clock.advance(days=1)
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    clock.advance(days=-1)
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 3600
    clock.advance(hours=1)
    assert breaker.admit(circuit, clock(), TWICE_HOURLY) == 0
    assert circuit.state == "half_open"


def test_an_open_circuit_survives_the_state_file(clock):
    """The open circuit is read back from JSON as open, with the same deadline."""
    circuit = Circuit()
    for _ in range(2):
        breaker.record_failure(circuit, FEED_DOWN, TWICE_HOURLY, clock())
    loaded = Circuit.model_validate_json(circuit.model_dump_json())
    assert loaded == circuit
    clock.advance(minutes=30)
    assert breaker.admit(loaded, clock(), TWICE_HOURLY) == 1800


# a run's end, and the line that says the circuit opened


def test_record_end_closes_on_success_and_counts_only_failures_that_trip(clock):
    """Success closes (and says so if it was not closed); a crash or a stop never counts."""
    circuit = Circuit()
    end = {"failure": FEED_DOWN, "at": clock()}
    assert breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.CRASHED, **end) is None
    assert (
        breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.BUDGET_EXCEEDED, **end) is None
    )
    assert circuit == Circuit()
    assert breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.FAILED, **end) is None
    assert breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.TIMEOUT, **end) == "opened"
    assert breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.SUCCEEDED, **end) == "closed"
    assert circuit == Circuit()
    assert breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.SUCCEEDED, **end) is None
    unclassified = {"failure": None, "at": clock()}
    assert (
        breaker.record_end(circuit, TWICE_HOURLY, status=RunStatus.FAILED, **unclassified) is None
    )
    assert circuit.failures == 0


def test_the_run_that_opens_the_circuit_says_so_loudly_and_logs_it(clock):
    """CIRCUIT OPEN, until when, and how to close it; circuit.opened is logged with the facts."""
    state = AgentState(agent="feeder")
    for _ in range(2):
        breaker.record_failure(state.circuit, FEED_DOWN, TWICE_HOURLY, clock())
    logged: list[tuple[str, dict]] = []
    log = EventLogger(lambda _level, event, fields, **_: logged.append((event, fields)), {})
    line = breaker.opened(state, "feeder: TimeoutError: feed timed out", log)
    assert line == (
        "feeder: CIRCUIT OPEN after 2 identical failures, runs skipped until "
        "2026-11-22T13:00:00Z (agentops reset feeder --circuit to close): "
        "feeder: TimeoutError: feed timed out"
    )
    assert logged == [
        (
            "circuit.opened",
            {
                "fingerprint": state.circuit.fingerprint,
                "failures": 2,
                "until": clock() + timedelta(hours=1),
            },
        )
    ]


# The state machine: a reference model written from the specification, not the code.

FINGERPRINTS = {
    "a": failure("TimeoutError: feed timed out after 30s"),
    "b": failure("ConnectionError: refused", "connection"),
    "c": failure("PermissionError: key revoked", "permission"),
}


@dataclass
class Model:
    """What the circuit should be, derived from the history of runs since it last closed."""

    threshold: int
    cooldown: timedelta
    state: str = "closed"
    until: datetime | None = None
    # Failures since the circuit last closed, as fingerprint names, oldest first.
    history: list[str] = field(default_factory=list)

    def trailing(self) -> int:
        """How many runs in a row (the most recent ones) failed the same way."""
        if not self.history:
            return 0
        last = self.history[-1]
        count = 0
        for name in reversed(self.history):
            if name != last:
                break
            count += 1
        return count

    def admit(self, now: datetime) -> float:
        if self.state == "open" and self.until is not None and now < self.until:
            return (self.until - now).total_seconds()
        if self.state == "open":
            self.state = "half_open"
        return 0.0

    def fail(self, name: str, now: datetime) -> bool:
        was_half_open = self.state == "half_open"
        self.history.append(name)
        if was_half_open or self.trailing() >= self.threshold:
            self.state, self.until = "open", now + self.cooldown
            return True
        return False

    def close(self) -> None:
        self.state, self.until, self.history = "closed", None, []


class CircuitMachine(RuleBasedStateMachine):
    """Cron runs against one circuit: time passes, runs are admitted or skipped, succeed or fail."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(T0)
        self.circuit = Circuit()
        self.config = CircuitConfig()
        self.model = Model(threshold=2, cooldown=timedelta(hours=1))

    @initialize(
        threshold=st.integers(1, 4),
        cooldown=st.sampled_from([1, 60, 3600, 86400]),
    )
    def configure(self, threshold, cooldown):
        self.config = CircuitConfig(failures=threshold, cooldown=cooldown)
        self.model = Model(threshold=threshold, cooldown=timedelta(seconds=cooldown))

    @rule(seconds=st.integers(0, 2 * 86400) | st.sampled_from([1, 59, 60, 3599, 3600]))
    def wait(self, seconds):
        self.clock.advance(seconds=seconds)

    @rule(early=st.booleans())
    def wait_until_the_cooldown_ends(self, early):
        """Land exactly on `until`, or one microsecond before it: the boundary."""
        if self.model.until is not None and self.model.until > self.clock():
            self.clock.now = self.model.until - timedelta(microseconds=early)

    @rule()
    def peek(self):
        """A run checks the circuit, then is skipped by another guard: admit() without a run."""
        assert breaker.admit(self.circuit, self.clock(), self.config) == self.model.admit(
            self.clock()
        )

    @rule(outcome=st.sampled_from(["ok", *FINGERPRINTS]))
    def run(self, outcome):
        now = self.clock()
        wait = breaker.admit(self.circuit, now, self.config)
        assert wait == self.model.admit(now)
        if wait > 0:
            return  # skipped: the run never happened
        if outcome == "ok":
            breaker.record_success(self.circuit)
            self.model.close()
            return
        opened = breaker.record_failure(self.circuit, FINGERPRINTS[outcome], self.config, now)
        assert opened == self.model.fail(outcome, now)

    @rule()
    def reset_by_hand(self):
        breaker.reset(self.circuit)
        self.model.close()

    @invariant()
    def agrees_with_the_model(self):
        assert self.circuit.state == self.model.state
        if self.model.state == "closed":
            assert self.circuit.until is None
        else:
            assert self.circuit.until == self.model.until
            last = self.model.history[-1]
            assert self.circuit.fingerprint == FINGERPRINTS[last].fingerprint
            assert self.circuit.reason == FINGERPRINTS[last].message
            assert self.circuit.failures == self.model.trailing()

    @invariant()
    def survives_the_state_file(self):
        assert Circuit.model_validate_json(self.circuit.model_dump_json()) == self.circuit


CircuitMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_circuit_follows_the_reference_model = CircuitMachine.TestCase


# -- real runs against a server on loopback ----------------------------------------------


def test_circuit_opens_after_two_identical_failures_and_reset_closes_it(
    project, invoke, fault_server
):
    """Always 500: fail, fail with CIRCUIT OPEN, then skipped without a request; reset reopens."""
    url = fault_server.script("/api", error(500))
    add_http_agent(project, "api", url, attempts=1)

    first = invoke("run", "api")
    assert first.exit_code == 1
    assert "CIRCUIT OPEN" not in one_line(first, project, "api")

    second = invoke("run", "api")
    assert second.exit_code == 1
    line = one_line(second, project, "api")
    assert "CIRCUIT OPEN" in line
    assert "agentops reset api --circuit" in line
    assert len(fault_server.hits("/api")) == 2
    assert project.state("api")["circuit"]["state"] == "open"

    third = invoke("run", "api")
    assert (third.exit_code, third.stdout, third.stderr) == (75, "", "")
    assert len(fault_server.hits("/api")) == 2, "an open circuit makes no request"
    assert logged(project, "api", "run.skipped")[-1]["reason"] == "circuit_open"

    reset = invoke("reset", "api", "--circuit")
    assert reset.exit_code == 0, reset.stderr
    assert "circuit closed" in reset.stdout
    assert project.state("api")["circuit"]["state"] == "closed"

    fourth = invoke("run", "api")
    assert fourth.exit_code == 1
    assert "CIRCUIT OPEN" not in one_line(fourth, project, "api")
    assert len(fault_server.hits("/api")) == 3


def test_two_different_failures_do_not_open_the_circuit(project, invoke, fault_server):
    """500 then 404 then 500: no two consecutive failures alike, so every run calls the server."""
    url = fault_server.script("/api", error(500), error(404), error(500), error(500))
    add_http_agent(project, "api", url, attempts=1)
    results = [invoke("run", "api") for _ in range(3)]
    assert [r.exit_code for r in results] == [1, 1, 1]
    assert not any("CIRCUIT OPEN" in r.stderr for r in results)
    assert len(fault_server.hits("/api")) == 3
    assert project.state("api")["circuit"]["state"] == "closed"

    fourth = invoke("run", "api")  # the same 500 twice in a row now
    assert "CIRCUIT OPEN" in one_line(fourth, project, "api")


def test_circuit_half_open_after_cooldown_reopens_or_closes(project, fault_server, clock):
    """cooldown = "1h": after it one trial run goes ahead; a failure reopens, a success closes."""
    url = fault_server.script("/api", error(500))
    add_http_agent(
        project, "api", url, attempts=1, toml='[circuit]\nfailures = 2\ncooldown = "1h"\n'
    )
    assert [project.run("api", clock=clock).exit_code for _ in range(3)] == [1, 1, 75]
    assert len(fault_server.hits("/api")) == 2

    clock.advance(hours=1)
    trial = project.run("api", clock=clock)
    assert trial.exit_code == 1
    assert "CIRCUIT OPEN" in trial.message, "the failed trial reopens it"
    assert len(fault_server.hits("/api")) == 3
    assert project.run("api", clock=clock).exit_code == 75

    clock.advance(hours=1)
    fault_server.script("/api", ok())
    assert project.run("api", clock=clock).exit_code == 0
    circuit = project.state("api")["circuit"]
    assert (circuit["state"], circuit["failures"]) == ("closed", 0)
    assert len(fault_server.hits("/api")) == 4
