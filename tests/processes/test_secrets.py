r"""Agents that put the session's fake secrets through every channel they have: none gets out.

The secrets come from the environment (conftest.py puts them there); agent
code reads them from ``os.environ`` and never holds them in its source,
which is itself a file the session scan reads. Each test asserts on the files
and the outputs it made (:func:`leaks` runs the session scanner over them),
and checks ``[REDACTED`` is there, so a secret that never got near the
channel cannot pass for one that was hidden.

Tests of known src bugs use secrets of their own, derived from the fakes at
run time: what those runs leak must not fail the whole session's scan.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import threading

import httpx
import pytest

from agentops.model.journal import written
from faultserver import FaultServer, ok
from leakscan import scan_text, scan_tree
from suite import FAKE_SECRETS, agent_source, cron_env

API, SK, GH, PW = (
    FAKE_SECRETS[name]
    for name in ("FAKE_SERVICE_API_KEY", "FAKE_OPENAI_KEY", "FAKE_GITHUB_TOKEN", "FAKE_DB_PASSWORD")
)

READS_THE_SECRETS = """
import os

API = os.environ["FAKE_SERVICE_API_KEY"]
SK = os.environ["FAKE_OPENAI_KEY"]
GH = os.environ["FAKE_GITHUB_TOKEN"]
PW = os.environ["FAKE_DB_PASSWORD"]
SECRETS = [API, SK, GH, PW]
"""
"""What every agent below starts with: the fake secrets, read from its environment."""


def secret_agent(
    run: str, *, params: str = "", result: str = "done: int", module: str = "", extra: str = ""
) -> str:
    """An agent that reads the secrets as it is imported (:data:`READS_THE_SECRETS`).

    ``module`` is code run at import, after the secrets are read (imports, a
    print); the rest is :func:`suite.agent_source`'s.
    """
    first = READS_THE_SECRETS + "\n" + textwrap.dedent(module)
    return agent_source(run, params=params, result=result, imports=first, extra=extra)


@pytest.fixture
def run_under_cron(run_agentops):
    """``agentops run agent ARGS`` as cron runs it (:func:`conftest.run_agentops`)."""

    def run(*args, **options):
        return run_agentops("run", "agent", *args, **options)

    return run


def quiet(result) -> None:
    """The command succeeded and printed nothing: cron mails nobody."""
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def leaks(project, *outputs):
    """The fake secrets in the project's files and in ``outputs``, as the session scan sees them."""
    found = scan_tree(project.home)
    for output in outputs:
        found += scan_text(output, "an output")
    return [str(leak) for leak in found]


# -- guarded actions ---------------------------------------------------------------------

ACTIONS = secret_agent(
    """
    for secret in SECRETS:
        ctx.action(
            "post as " + PW,
            key=f"{secret}/item",
            do=lambda secret=secret: {"echo": secret, "url": f"https://x.test/?q={secret}"},
        )
    return Result(done=len(SECRETS))
    """
)


def test_action_names_and_keys_keep_a_digest_of_the_secret(project, run_agentops, run_under_cron):
    """Secrets in action names and keys: digests in ledger, log and `agentops ledger` output."""
    project.add_agent("agent", ACTIONS)
    assert run_under_cron().returncode == 0
    quiet(run_under_cron())
    table = run_agentops("ledger", "agent", "--all")
    listing = run_agentops("ledger", "agent", "--all", "--json")
    assert table.returncode == listing.returncode == 0

    ((name, keys),) = project.ledger("agent").items()
    assert name.startswith("post as [REDACTED:")
    assert len(keys) == 4, "four secrets, four digests: none taken for a duplicate"
    assert all(key.startswith("[REDACTED:") and key.endswith("]/item") for key in keys)
    skipped = [e for e in project.events("agent") if e["event"] == "action.skipped"]
    assert len(skipped) == 4, "the digest is the same from run to run"
    rows = json.loads(listing.stdout)
    assert {row["key"] for row in rows} == set(keys)
    assert {row["result"]["echo"] for row in rows} == {"[REDACTED]"}
    assert "[REDACTED:" in table.stdout
    assert leaks(project, table.stdout, table.stderr, listing.stdout, listing.stderr) == []


DIES_AFTER_A_FAILED_DO = secret_agent(
    """
    def send():
        raise PermissionError(f"401 for {API} with {SK}: token {GH}, password {PW}")
    try:
        ctx.action("send", key="report-1", do=send)
    except PermissionError:
        pass
    if not (ctx.home / "survive").exists():
        os.kill(os.getpid(), signal.SIGKILL)  # after the abort record: the journal stays
    return Result(done=0)
    """,
    module="import signal",
)


def test_the_error_of_a_failed_do_is_redacted_in_the_journal_of_a_dead_run(
    project, run_agentops, run_under_cron
):
    """do() fails with secrets, then kill -9: the journal, `ledger` and the next run hide them."""
    project.add_agent("agent", DIES_AFTER_A_FAILED_DO)
    died = run_under_cron()
    assert died.returncode == -signal.SIGKILL
    journal = project.home / "state" / "agent.journal"
    records = [json.loads(line) for line in written(journal.read_bytes()).splitlines()]
    (abort,) = [r for r in records if r["op"] == "abort"]
    assert abort["error"].startswith("PermissionError: 401 for [REDACTED] with [REDACTED]")
    listing = run_agentops("ledger", "agent", "--all", "--json")
    assert listing.returncode == 0
    assert [(r["key"], r["status"]) for r in json.loads(listing.stdout)] == [("report-1", "failed")]

    (project.home / "survive").write_text("")
    quiet(run_under_cron())
    assert "run.recovered" in project.event_names("agent")
    failed = [e["error"] for e in project.events("agent") if e["event"] == "action.failed"]
    assert failed == [abort["error"]] * 2, "the failed do() ran again, and failed again"
    assert leaks(project, died.stdout, died.stderr, listing.stdout, listing.stderr) == []


# -- what agent code prints --------------------------------------------------------------

THREAD_PRINTS_AFTER_RETURN = secret_agent(
    """
    threading.Thread(target=chatter, name="chatter", daemon=True).start()
    printed.wait(600)  # it has printed both ways once: it goes on as run() returns
    ctx.log.info("run.returning")
    return Result(done=0)
    """,
    module="import sys, threading, time",
    extra="""
    printed = threading.Event()

    def chatter():
        # It prints before, while and after run() returns, until the process ends.
        while True:
            print("chatter:", *SECRETS, flush=True)
            os.write(1, b"and at the fd level\\n")
            printed.set()
            time.sleep(0.001)
    """,
)


def test_a_thread_printing_after_run_returned_reaches_the_log_not_cron(project, run_under_cron):
    """A thread printing secrets until the process ends: exit 0, silent, every line redacted."""
    project.add_agent("agent", THREAD_PRINTS_AFTER_RETURN)
    for _ in range(3):  # the prints race the end of the run: a few times over
        quiet(run_under_cron())
    events = project.events("agent")
    names = [e["event"] for e in events]
    assert "run.threads_left" in names
    printed = {e["line"] for e in events if e["event"] == "agent.output"}
    assert printed == {"chatter: " + " ".join(["[REDACTED]"] * 4), "and at the fd level"}
    assert leaks(project) == []


OUTPUT = secret_agent(
    """
    print("connecting with", API)
    print("token", GH, file=sys.stderr)
    warnings.warn(f"the key {SK} is old")
    logging.getLogger("some.library").warning("retrying with password %s", PW)
    ctx.log.info("agent.config", api_key=API, nested={"list": [SK, {"deep": GH}]}, note=f"pw {PW}")
    ctx.log.info("key " + SK)
    ctx.state["creds"] = {"mine": API, "list": [SK, GH, PW]}
    ctx.state["pw " + PW] = "a secret as a key"
    if params.mode == "fail":
        raise RuntimeError(f"cannot log in as {PW} with {API} or {SK} or {GH}")
    return Result(note=f"used {SK} and {API}")
    """,
    params='mode: str = "ok"',
    result="note: str",
    module="import logging, sys, warnings",
    extra="""
    def validate(result: Result, ctx: Context) -> None:
        if ctx.params.mode == "reject":
            raise ValueError(f"the note shows {GH} and {PW}")
    """,
)


def test_prints_logs_state_and_the_result_hide_secrets(project, run_under_cron):
    """print, warnings, stray logging, ctx.log, ctx.state and the result: all redacted."""
    project.add_agent("agent", OUTPUT)
    quiet(run_under_cron())
    data = project.state("agent")["data"]
    assert data["creds"] == {"mine": "[REDACTED]", "list": ["[REDACTED]"] * 3}
    assert "pw [REDACTED]" in data
    events = project.events("agent")
    outputs = [e["line"] for e in events if e["event"] == "agent.output"]
    assert "connecting with [REDACTED]" in outputs
    assert "token [REDACTED]" in outputs
    assert any("the key [REDACTED] is old" in line for line in outputs)
    assert "retrying with password [REDACTED]" in outputs
    config = next(e for e in events if e["event"] == "agent.config")
    assert config["nested"] == {"list": ["[REDACTED]", {"deep": "[REDACTED]"}]}
    assert "key [REDACTED]" in {e["event"] for e in events}
    assert events[-1]["result"] == {"note": "used [REDACTED] and [REDACTED]"}
    assert leaks(project) == []


@pytest.mark.parametrize(
    ("mode", "code", "said"), [("fail", 1, "raised"), ("reject", 65, "output")]
)
def test_the_error_line_and_the_recorded_error_hide_secrets(
    project, run_under_cron, mode, code, said
):
    """A failure or a rejection quoting secrets: the stderr line, errors and log redacted."""
    project.add_agent("agent", OUTPUT)
    result = run_under_cron("-p", f"mode={mode}")
    assert (result.returncode, result.stdout) == (code, "")
    assert said in result.stderr
    assert result.stderr.count("[REDACTED]") >= 2
    state = project.state("agent")
    assert state["last_run"]["error"].count("[REDACTED]") >= 2
    assert [e["message"] for e in state["errors"]] == [state["last_run"]["error"]]
    assert leaks(project, result.stderr) == []


# -- HTTP ---------------------------------------------------------------------------------

HTTP = secret_agent(
    """
    if params.missing:  # raise_for_status() quotes the whole URL
        ctx.http.get(f"{params.base}/gone/{API}?key={API}&q={GH}").raise_for_status()
    response = ctx.http.get(f"{params.base}/items/{API}", params={"q": API, "pw": PW, "sk": SK})
    ctx.log.info("response.body", body=response.text)
    ctx.state["last_body"] = response.text
    raw = ctx.http.get(f"{params.base}/items/{API}?q={API}")
    return Result(status=raw.status_code)
    """,
    params="base: str\nmissing: bool = False",
    result="status: int",
)


def test_secrets_percent_encoded_by_httpx_are_redacted(project, run_under_cron):
    r"""Secrets in a real request's path and query, and \u-escaped in a JSON body: all redacted."""
    project.add_agent("agent", HTTP)
    path = httpx.URL(f"http://h/items/{API}").raw_path.decode()
    body = {"echo": API, "note": f"signed with {SK}", "user": {"password": PW}}
    with FaultServer() as server:
        server.script(path, ok(body))
        result = run_under_cron("-p", f"base={server.base_url}")
        failed = run_under_cron("-p", f"base={server.base_url}", "-p", "missing=1")
        requests = server.requests
    quiet(result)
    # What went over the wire: the encoded forms the redactor has to know.
    assert [r.path for r in requests[:2]] == [path, path]
    assert "%C3%9C" in path
    assert "$" in path
    assert "%5C" in requests[0].query, "params= encodes the backslash (urllib style)"
    assert "\\" in requests[1].query, "httpx leaves the backslash bare in a query it is given"
    assert "\\u00dc" in json.dumps(body), "the body holds the secret \\u-escaped"

    logged = [e for e in project.events("agent") if e["event"] == "http.request"]
    assert len(logged) == 3
    assert all(e["url"].count("[REDACTED]") >= 2 for e in logged)
    response = next(e for e in project.events("agent") if e["event"] == "response.body")
    assert json.loads(response["body"]) == {
        "echo": "[REDACTED]",
        "note": "signed with [REDACTED]",
        "user": {"password": "[REDACTED]"},
    }
    assert (failed.returncode, failed.stdout) == (1, "")
    assert "404 Not Found" in failed.stderr
    assert "[REDACTED]" in failed.stderr
    crash = next(e for e in project.events("agent") if e["event"] == "run.failed")
    assert "HTTPStatusError" in crash["exception"]
    assert leaks(project, failed.stderr) == []


# -- human review -------------------------------------------------------------------------

DRAFTER = secret_agent(
    """
    return Result(
        confidence=params.confidence, draft=f"post {API} {SK}", meta={"to": GH, "pw": PW}
    )
    """,
    params="confidence: float = 0.7",
    result="confidence: float\ndraft: str\nmeta: dict",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        ctx.action("publish", key=result.draft, do=lambda: {"posted": result.draft, "by": GH})
    """,
)


def test_held_and_escalated_results_hide_secrets(project, run_agentops, run_under_cron):
    """Results held for review: state, `review list`, approve, reject and escalation redacted."""
    project.add_agent("agent", DRAFTER)
    held = run_under_cron()
    quiet(held)
    escalated = run_under_cron("-p", "confidence=0.2")
    assert escalated.returncode == 1
    review = project.state("agent")["review"]
    assert [h["escalated"] for h in review] == [False, True]
    assert review[0]["result"] == {
        "confidence": 0.7,
        "draft": "post [REDACTED] [REDACTED]",
        "meta": {"to": "[REDACTED]", "pw": "[REDACTED]"},
    }
    table = run_agentops("review", "list")
    listing = run_agentops("review", "list", "agent", "--json")
    assert json.loads(listing.stdout)[0]["result"] == review[0]["result"]
    approved = run_agentops("review", "approve", "agent", review[0]["id"])
    rejected = run_agentops("review", "reject", "agent", review[1]["id"], "--reason", f"no {PW}")
    assert (approved.returncode, rejected.returncode) == (0, 0)
    assert project.state("agent")["review"] == []
    outputs = [held, escalated, table, listing, approved, rejected]
    printed = [text for result in outputs for text in (result.stdout, result.stderr)]
    assert "[REDACTED]" in table.stdout
    assert leaks(project, *printed) == []


# -- in-process runs ----------------------------------------------------------------------

IMPORT_PRINTS = secret_agent(
    "return Result(echoed=API)", result="echoed: str", module='print("imported with", GH)'
)


def test_in_process_runs_know_the_fake_secrets_from_the_start(project):
    """run_agent(environ={}) still knows the fakes: even what import prints is redacted."""
    project.add_agent("agent", IMPORT_PRINTS)
    outcome = project.run("agent")  # run_agent(..., environ={})
    assert outcome.exit_code == 0
    events = project.events("agent")
    assert events[0]["line"] == "imported with [REDACTED]"
    assert events[-1]["result"] == {"echoed": "[REDACTED]"}
    assert leaks(project) == []


# -- known src bugs: their secrets are derived, so the session scan stays green -------------

SETS_A_KEY_WHILE_IMPORTING = secret_agent(
    "return Result(done=0)",
    module="""
    os.environ["DOTENV_API_KEY"] = "dotenv-" + GH[::-1]  # as load_dotenv() would
    print("loaded", os.environ["DOTENV_API_KEY"])
    """,
)


def test_a_key_set_while_importing_is_redacted_from_what_the_import_printed(
    project, run_under_cron
):
    """A key load_dotenv() sets at import time is redacted from a line printed at import."""
    project.add_agent("agent", SETS_A_KEY_WHILE_IMPORTING)
    quiet(run_under_cron())
    dotenv_key = "dotenv-" + GH[::-1]
    assert project.events("agent")[0]["line"] == "loaded [REDACTED]"
    assert dotenv_key not in project.log_path("agent").read_text()


THREAD_PRINTS_LATER = secret_agent(
    """
    threading.Thread(target=later, args=(ctx.home / "release",), name="later").start()
    return Result(done=0)
    """,
    module="import threading, time",
    extra="""
    def later(release):
        while not release.exists():
            time.sleep(0.01)
        print("later:", os.environ["LATER_API_KEY"])
    """,
)


def test_what_a_thread_prints_after_the_run_still_goes_to_the_log(project, capsys, monkeypatch):
    """A thread left running prints after run_agent() returned: the line is logged, not printed."""
    later_key = "later-" + SK[::-1]
    monkeypatch.setenv("LATER_API_KEY", later_key)
    project.add_agent("agent", THREAD_PRINTS_LATER)
    saved = sys.stdout, sys.stderr
    try:
        outcome = project.run("agent")  # run_agent(..., environ={})
        (project.home / "release").write_text("")
        next(t for t in threading.enumerate() if t.name == "later").join(120)
    finally:
        sys.stdout, sys.stderr = saved  # the redirect must not outlive the test
    assert outcome.threads_left == 1
    assert later_key not in capsys.readouterr().out
    assert "later: [REDACTED]" in [e.get("line") for e in project.events("agent")]


CHILD_PROCESS_PRINTS = secret_agent(
    """
    subprocess.run(["/bin/sh", "-c", 'echo "child: $CHILD_API_KEY"'], check=True)
    return Result(done=0)
    """,
    module="import subprocess",
)


def test_what_a_child_process_prints_goes_to_the_log_redacted(project, run_under_cron):
    """A child process of the agent printing a secret: a successful cron run stays silent."""
    child_key = "child-" + API[::-1]
    project.add_agent("agent", CHILD_PROCESS_PRINTS)
    result = run_under_cron(env=cron_env(project.home, CHILD_API_KEY=child_key))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "child: [REDACTED]" in [e.get("line") for e in project.events("agent")]
