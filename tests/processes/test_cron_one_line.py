"""Under cron a failure says exactly one line, also when the log itself cannot be written.

The log that cannot be written (here a directory where the log file goes:
root writes through a read-only directory, so a mode would prove nothing)
is said in the outcome's own line, or alone when the run needed nobody.
And variables named like credentials are secrets, as API keys are.
"""

from __future__ import annotations

import subprocess

import pytest

from agentops._infra.redact import REDACTED
from suite import AGENTOPS, HELLO, cron_env, remember

LOUD = """
from pydantic import BaseModel
from agentops import Context
import os

class Params(BaseModel):
    fail: bool = False

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    print("using", os.environ.get("SERVICE_CREDENTIALS"))
    ctx.log.info("creds", value=os.environ.get("DEPLOY_PRIVATE_KEY_B64"))
    if params.fail:
        raise RuntimeError("it broke")
    return Result(ok=True)
"""


def cron(project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), *args],
        env=cron_env(project.home, **env),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    remember(f"agentops {' '.join(args)}", result.stdout, result.stderr)
    return result


@pytest.fixture
def unwritable_log(project):
    """The agent ``hello``, and a directory where its log file would go."""
    project.add_agent("hello", HELLO)
    log = project.log_path("hello")
    log.mkdir(parents=True)
    return log


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("-p", "nosuch=1"), 65, "hello: params rejected: "),
        (("--params-json", "[1]"), 2, None),
    ],
    ids=["params rejected", "usage"],
)
def test_a_failure_with_an_unwritable_log_says_one_line(unwritable_log, project, args, code, said):
    """The failure and the log's problem, in the one line cron mails."""
    result = cron(project, "run", "hello", *args)
    assert result.returncode == code
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    if said is not None:
        assert lines[0].startswith(f"agentops: {said}")
        assert lines[0].endswith(f"(cannot write the log {unwritable_log}: Is a directory)")


def test_a_success_with_an_unwritable_log_says_only_that(unwritable_log, project):
    """The run needed nobody: the one line is the log's."""
    result = cron(project, "run", "hello")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"agentops: cannot write the log {unwritable_log}: Is a directory"
    ]


def test_a_failed_run_with_an_unwritable_log_says_one_line(project):
    """run() raised, and nothing could be logged: still one line, naming both."""
    project.add_agent("loud", LOUD)
    log = project.log_path("loud")
    log.mkdir(parents=True)
    result = cron(project, "run", "loud", "-p", "fail=true")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("agentops: loud: ")
    assert line.endswith(f"(cannot write the log {log}: Is a directory)")


def test_credentials_never_reach_the_log_or_crons_mail(project):
    """A run that prints and logs *_CREDENTIALS and *_PRIVATE_KEY_B64: neither is written."""
    project.add_agent("loud", LOUD)
    secrets = {
        "SERVICE_CREDENTIALS": "svc-0123456789-abcdefghij",
        "DEPLOY_PRIVATE_KEY_B64": "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZ",
    }
    result = cron(project, "run", "loud", **secrets)
    assert result.returncode == 0, result.stderr
    written = project.log_path("loud").read_text() + result.stdout + result.stderr
    for value in secrets.values():
        assert value not in written
    assert REDACTED in written
