"""Retries of run(): only transient failures, exponential waits, Retry-After honoured."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.errors import AgentCodeFailed, Interrupted, RunTimeout, TaskFailed, TransientError
from agentops.guards.failure import Failure
from agentops.guards.retry import call_with_retries, wait_s
from agentops.project.config import Retry
from faultserver import error, garbage, http_date, ok, slow, too_many
from suite import Waits, add_http_agent, agent_source, logged, one_line

THREE = Retry(attempts=3, initial=1, max=60)
PLAIN = Failure("timeout", "TimeoutError: slow", transient=True)


def wrapped(cause: BaseException, error: type[TaskFailed] = AgentCodeFailed) -> TaskFailed:
    """What the gatekeeper raises for an agent exception: ``raise AgentCodeFailed(...) from it``."""
    try:
        raise error(f"task failed: {cause}") from cause
    except TaskFailed as exc:
        return exc


class Flaky:
    """A run() that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Recorder:
    """Collects what call_with_retries sleeps and announces."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.announced: list[tuple[int, Failure, float]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def before_sleep(self, attempt: int, failure: Failure, wait: float) -> None:
        self.announced.append((attempt, failure, wait))

    def run(self, call: Flaky, spec: Retry = THREE) -> object:
        return call_with_retries(call, spec, sleep=self.sleep, before_sleep=self.before_sleep)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# wait_s


def test_wait_s_doubles_from_initial_without_jitter():
    """With zero jitter the waits are initial, 2*initial, 4*initial..."""
    spec = Retry(attempts=10, initial=0.5, max=60)
    waits = [wait_s(spec, n, PLAIN, jitter=lambda: 0.0) for n in range(1, 6)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_wait_s_adds_up_to_one_initial_of_jitter():
    """Jitter adds jitter() * initial on top of the exponential wait."""
    spec = Retry(attempts=10, initial=2, max=60)
    assert wait_s(spec, 3, PLAIN, jitter=lambda: 0.5) == 8 + 1


def test_wait_s_is_capped_by_max():
    """However many attempts, the wait never passes max."""
    spec = Retry(attempts=100, initial=1, max=30)
    assert wait_s(spec, 6, PLAIN, jitter=lambda: 0.0) == 30
    assert wait_s(spec, 100, PLAIN, jitter=lambda: 0.99) == 30


def test_wait_s_honours_retry_after_instead_of_backing_off():
    """A Retry-After is waited as it is, whatever the attempt number and jitter."""
    asked = Failure("http_429", "slow down", transient=True, retry_after_s=7)
    assert wait_s(THREE, 1, asked, jitter=lambda: 0.9) == 7
    assert wait_s(THREE, 2, asked, jitter=lambda: 0.9) == 7
    now = Failure("http_429", "slow down", transient=True, retry_after_s=0)
    assert wait_s(THREE, 2, now, jitter=lambda: 0.9) == 0


def test_wait_s_caps_retry_after_by_max():
    """A server asking for an hour waits only max."""
    asked = Failure("http_503", "down", transient=True, retry_after_s=3600)
    assert wait_s(Retry(max="5m"), 1, asked) == 300


@given(
    attempt=st.integers(1, 100),
    initial=st.floats(0.001, 120, allow_nan=False),
    longest=st.floats(120, 3600, allow_nan=False),
    jitter=st.floats(0, 1, exclude_max=True),
)
def test_wait_s_stays_between_the_backoff_and_max(attempt, initial, longest, jitter):
    """Every wait is in [backoff, backoff + initial], and never above max."""
    spec = Retry(attempts=100, initial=initial, max=longest)
    wait = wait_s(spec, attempt, PLAIN, jitter=lambda: jitter)
    backoff = initial * 2 ** (attempt - 1)
    assert wait <= longest
    assert min(longest, backoff) <= wait <= min(longest, backoff + initial)


@given(retry_after=st.floats(0, 10**6, allow_nan=False), attempt=st.integers(1, 100))
def test_wait_s_of_a_retry_after_is_never_above_max(retry_after, attempt):
    """A Retry-After is honoured exactly up to max, and capped above it."""
    asked = Failure("http_429", "slow down", transient=True, retry_after_s=retry_after)
    assert wait_s(THREE, attempt, asked) == min(retry_after, 60)


# call_with_retries, and which failures it retries


def test_a_call_that_succeeds_is_called_once(recorder):
    """No failure, no retry, no sleep."""
    call = Flaky()
    assert recorder.run(call) == "done"
    assert call.calls == 1
    assert recorder.sleeps == []
    assert recorder.announced == []


@pytest.mark.parametrize("failures", [1, 2])
def test_transient_failures_are_retried_until_success(recorder, failures):
    """N transient failures then success: N + 1 calls, N sleeps, each announced first."""
    causes = [TimeoutError(f"slow #{n}") for n in range(failures)]
    call = Flaky(*(wrapped(cause) for cause in causes))
    assert recorder.run(call) == "done"
    assert call.calls == failures + 1
    assert [attempt for attempt, _, _ in recorder.announced] == list(range(1, failures + 1))
    assert [wait for _, _, wait in recorder.announced] == recorder.sleeps
    assert [failure.message for _, failure, _ in recorder.announced] == [
        f"TimeoutError: {cause}" for cause in causes
    ]
    for attempt, failure, wait in recorder.announced:
        assert failure.category == "timeout"
        assert 2 ** (attempt - 1) <= wait <= 2 ** (attempt - 1) + 1  # initial=1, with jitter


def test_retry_after_sets_each_sleep(recorder):
    """The agent's TransientError(retry_after_s=...) is what each sleep waits."""
    call = Flaky(
        wrapped(TransientError("busy", retry_after_s=4)),
        wrapped(TransientError("busy", retry_after_s=9)),
    )
    assert recorder.run(call) == "done"
    assert recorder.sleeps == [4, 9]
    assert [(a, f.retry_after_s, w) for a, f, w in recorder.announced] == [(1, 4, 4), (2, 9, 9)]


def test_retry_after_from_a_429_response_is_capped_by_max(recorder):
    """A 429 asking for ten minutes is retried after max (30 s here)."""
    import httpx  # noqa: PLC0415 - only this test needs a real response

    request = httpx.Request("GET", "https://api.example.com/")
    response = httpx.Response(429, headers={"Retry-After": "600"}, request=request)
    cause = httpx.HTTPStatusError("429 Too Many Requests", request=request, response=response)
    call = Flaky(wrapped(cause))
    assert recorder.run(call, Retry(attempts=2, max=30)) == "done"
    assert recorder.sleeps == [30]


@pytest.mark.parametrize("attempts", [2, 3, 5])
def test_retries_stop_after_attempts_and_reraise_the_last_error(recorder, attempts):
    """Always transient: exactly `attempts` calls, attempts - 1 sleeps, the last error raised."""
    errors = [wrapped(ConnectionError(f"refused #{n}")) for n in range(attempts + 3)]
    call = Flaky(*errors)
    with pytest.raises(TaskFailed) as raised:
        recorder.run(call, Retry(attempts=attempts, initial=0.01, max=1))
    assert raised.value is errors[attempts - 1]
    assert call.calls == attempts
    assert len(recorder.sleeps) == attempts - 1
    assert [attempt for attempt, _, _ in recorder.announced] == list(range(1, attempts))


def test_one_attempt_means_no_retry(recorder):
    """attempts=1: a transient failure is raised at once."""
    error = wrapped(TimeoutError("slow"))
    call = Flaky(error)
    with pytest.raises(TaskFailed) as raised:
        recorder.run(call, Retry(attempts=1))
    assert raised.value is error
    assert call.calls == 1
    assert recorder.sleeps == []


@pytest.mark.parametrize(
    "cause",
    [
        ValueError("bad input"),
        PermissionError("no access"),
        KeyError("missing"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_non_transient_failures_are_never_retried(recorder, cause):
    """Validation, permission and plain errors are raised after one call."""
    error = wrapped(cause)
    call = Flaky(error, wrapped(TimeoutError("would be retried")))
    with pytest.raises(TaskFailed) as raised:
        recorder.run(call)
    assert raised.value is error
    assert call.calls == 1
    assert recorder.sleeps == []


def test_a_non_transient_failure_after_a_retry_stops_the_retries(recorder):
    """Transient, then permanent: two calls, one sleep, the permanent error raised."""
    permanent = wrapped(PermissionError("key revoked"))
    call = Flaky(wrapped(TimeoutError("slow")), permanent, wrapped(TimeoutError("slow")))
    with pytest.raises(TaskFailed) as raised:
        recorder.run(call, Retry(attempts=5))
    assert raised.value is permanent
    assert call.calls == 2
    assert len(recorder.sleeps) == 1


@pytest.mark.parametrize("kind", [RunTimeout, Interrupted])
def test_timeouts_and_interrupts_are_never_retried(recorder, kind):
    """RunTimeout and Interrupted end the run even when their cause looks transient."""
    error = wrapped(TimeoutError("slow"), kind)
    call = Flaky(error)
    with pytest.raises(kind) as raised:
        recorder.run(call)
    assert raised.value is error
    assert call.calls == 1
    assert recorder.sleeps == []


@pytest.mark.parametrize("kind", [RunTimeout, Interrupted])
def test_a_timeout_during_a_retry_is_not_retried_either(recorder, kind):
    """A RunTimeout or Interrupted on the second attempt ends the retries."""
    error = wrapped(TimeoutError("slow"), kind)
    call = Flaky(wrapped(TimeoutError("slow")), error, wrapped(TimeoutError("slow")))
    with pytest.raises(kind) as raised:
        recorder.run(call, Retry(attempts=5))
    assert raised.value is error
    assert call.calls == 2


def test_a_task_failed_without_a_cause_is_not_retried(recorder):
    """Without the agent's exception behind it there is nothing to call transient."""
    error = TaskFailed("output unusable")
    call = Flaky(error)
    with pytest.raises(TaskFailed):
        recorder.run(call)
    assert call.calls == 1


def test_an_exception_that_is_not_task_failed_is_not_retried(recorder):
    """A bare TimeoutError (not wrapped by the gatekeeper) passes through untouched."""
    error = TimeoutError("slow")
    call = Flaky(error)
    with pytest.raises(TimeoutError) as raised:
        recorder.run(call)
    assert raised.value is error
    assert call.calls == 1


# tenacity is imported only by runs that retry


def python(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_importing_retry_does_not_import_tenacity():
    """Cron pays every import on every tick: tenacity waits until a run retries."""
    assert python("import agentops.guards.retry, sys; print('tenacity' in sys.modules)") == "False"


def test_a_call_that_succeeds_first_time_does_not_import_tenacity():
    """A run that never fails never loads tenacity."""
    code = """
        import sys
        from agentops.project.config import Retry
        from agentops.guards.retry import call_with_retries
        call_with_retries(lambda: 1, Retry(), sleep=print, before_sleep=print)
        print('tenacity' in sys.modules)
    """
    assert python(code) == "False"


def test_a_retry_imports_tenacity():
    """The first retry loads tenacity."""
    code = """
        import sys
        from agentops.project.config import Retry
        from agentops.errors import AgentCodeFailed
        from agentops.guards.retry import call_with_retries
        failures = [TimeoutError("slow")]
        def call():
            if failures:
                raise AgentCodeFailed("x") from failures.pop()
            return 1
        call_with_retries(call, Retry(), sleep=lambda s: None, before_sleep=lambda *a: None)
        print('tenacity' in sys.modules)
    """
    assert python(code) == "True"


# -- real runs against a server on loopback --------------------------------------------
#
# Each run is in-process with a fake clock: a retry's wait moves the clock
# (``Waits``) instead of passing, so what is checked is the wait the run chose.


def test_429_with_retry_after_is_retried_after_the_wait(project, fault_server, clock):
    """429 Retry-After: 1 then 200: exit 0, two requests, and the run waited one second."""
    url = fault_server.script("/api", too_many(retry_after=1), ok({"n": 1}))
    add_http_agent(project, "api", url)
    waits = Waits(clock)
    outcome = project.run("api", clock=clock, sleep=waits)
    assert outcome.exit_code == 0
    assert len(fault_server.hits("/api")) == 2
    assert waits == [1.0]
    (retry,) = logged(project, "api", "retry.attempt")
    assert (retry["attempt"], retry["category"], retry["wait_s"]) == (1, "http_429", 1.0)
    assert project.state("api")["last_run"]["status"] == "succeeded"


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param("30", id="seconds"), pytest.param(http_date(3600), id="http-date")],
)
def test_retry_after_is_capped_by_max(project, fault_server, clock, retry_after):
    """Retry-After far beyond [retry] max = 0.3s: the wait is 0.3s, not the server's."""
    url = fault_server.script("/api", too_many(retry_after=retry_after), ok())
    add_http_agent(project, "api", url, max_wait="0.3s")
    waits = Waits(clock)
    outcome = project.run("api", clock=clock, sleep=waits)
    assert outcome.exit_code == 0, outcome.message
    (retry,) = logged(project, "api", "retry.attempt")
    assert (retry["category"], retry["wait_s"]) == ("http_429", 0.3)
    assert waits == [0.3]


def test_retry_after_as_an_http_date_is_honoured(project, fault_server, clock):
    """Retry-After as an HTTP date an hour ahead, [retry] max 2h: the run waits until about then.

    The date is read against the real time (an HTTP date is absolute), so the
    wait is an hour less the moments the reply took: minutes of slack for a busy machine.
    """
    url = fault_server.script("/api", too_many(retry_after=http_date(3600)), ok())
    add_http_agent(project, "api", url, max_wait="2h")
    waits = Waits(clock)
    outcome = project.run("api", clock=clock, sleep=waits)
    assert outcome.exit_code == 0, outcome.message
    (retry,) = logged(project, "api", "retry.attempt")
    assert retry["category"] == "http_429"
    assert 3000 <= retry["wait_s"] <= 3600
    assert waits == [pytest.approx(retry["wait_s"], abs=0.001)]  # logged to the millisecond


def test_503_with_retry_after_is_honoured(project, fault_server, clock):
    """503 with Retry-After: 1 is a transient 5xx: retried after the server's wait."""
    url = fault_server.script("/api", error(503, retry_after=1), ok())
    add_http_agent(project, "api", url)
    waits = Waits(clock)
    assert project.run("api", clock=clock, sleep=waits).exit_code == 0
    (retry,) = logged(project, "api", "retry.attempt")
    assert (retry["category"], retry["wait_s"]) == ("http_5xx", 1.0)
    assert waits == [1.0]


def test_persistent_500_fails_after_all_attempts(project, invoke, fault_server):
    """500, 500, 500 with attempts = 3: exit 1 after exactly 3 requests, one line on stderr."""
    url = fault_server.script("/api", error(500))
    add_http_agent(project, "api", url, attempts=3)
    result = invoke("run", "api")
    assert result.exit_code == 1
    line = one_line(result, project, "api")
    assert "HTTPStatusError" in line
    assert "500 Internal Server Error" in line
    assert len(fault_server.hits("/api")) == 3
    retries = logged(project, "api", "retry.attempt")
    assert [(r["attempt"], r["category"]) for r in retries] == [(1, "http_5xx"), (2, "http_5xx")]
    assert all(retry["wait_s"] >= 0.05 for retry in retries)
    assert project.state("api")["last_run"]["status"] == "failed"


def test_404_is_not_retried(project, invoke, fault_server):
    """404 is a client error: exit 1 after exactly one request, no retry."""
    url = fault_server.script("/api", error(404), ok())
    add_http_agent(project, "api", url)
    result = invoke("run", "api")
    assert result.exit_code == 1
    assert "404 Not Found" in one_line(result, project, "api")
    assert len(fault_server.hits("/api")) == 1
    assert logged(project, "api", "retry.attempt") == []


def test_body_that_is_not_json_is_not_retried(project, invoke, fault_server):
    """A 200 whose body is not JSON: response.json() fails, exit 1 after one request."""
    url = fault_server.script("/api", garbage(), ok())
    add_http_agent(project, "api", url)
    result = invoke("run", "api")
    assert result.exit_code == 1
    assert "JSONDecodeError" in one_line(result, project, "api")
    assert len(fault_server.hits("/api")) == 1
    assert logged(project, "api", "retry.attempt") == []
    assert project.state("api")["errors"][-1]["category"] == "failed"


def test_slow_response_past_the_client_timeout_is_retried(project, fault_server, clock):
    """A reply slower than ctx.http's 1s timeout is a timeout: retried, then 200."""
    url = fault_server.script("/api", slow(600.0), ok({"n": 2}))
    add_http_agent(project, "api", url, attempts=3, timeout=1.0)
    outcome = project.run("api", clock=clock)
    assert outcome.exit_code == 0, outcome.message
    assert len(fault_server.hits("/api")) == 2
    (gap,) = fault_server.gaps("/api")
    assert gap < 300, "the client gave up after 1s; it did not wait for the 600s reply"
    (retry,) = logged(project, "api", "retry.attempt")
    assert retry["category"] == "timeout"
    assert "ReadTimeout" in retry["error"]
    assert len(logged(project, "api", "http.error")) == 1


def test_a_negative_retry_after_is_not_a_crash(project, clock):
    """TransientError(retry_after_s=-5) is retried at once, not an internal error."""
    project.add_agent(
        "agent",
        agent_source(
            """
            tries = ctx.home / "tries"
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            if len(tries.read_text()) < 2:
                raise TransientError("busy", retry_after_s=-5)
            return Result(ok=True)
            """,
            result="ok: bool",
            imports="from agentops.errors import TransientError",
        ),
    )
    slept = []
    outcome = project.run(clock=clock, sleep=slept.append)
    assert outcome.exit_code == 0
    assert slept == [0.0]
