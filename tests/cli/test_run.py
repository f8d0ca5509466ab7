"""`agentops run`: params from the command line, silence under cron, one line when it fails."""

from __future__ import annotations

import subprocess

import pytest

from suite import AGENTOPS, agent_source, cron_env


def test_successful_run_prints_nothing_without_a_tty(project, invoke):
    """Under cron a successful run is silent on stdout and stderr."""
    project.add_agent("hello")
    result = invoke("run", "hello")
    assert result.exit_code == 0
    assert result.output == ""


def test_param_override_reaches_the_agent(project, invoke):
    """-p key=value overrides [params]; --params-json too, with -p winning."""
    project.add_agent("hello", toml='[params]\nname = "toml"\n')
    assert invoke("run", "hello", "-p", "name=Ada").exit_code == 0
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Ada!"}
    invoke("run", "hello", "--params-json", '{"name": "Json"}')
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Json!"}
    invoke("run", "hello", "--params-json", '{"name": "Json"}', "-p", "name=Flag")
    assert project.events("hello")[-1]["result"] == {"greeting": "Hello, Flag!"}


def test_failed_run_prints_one_line_naming_the_log(project, invoke):
    """A failure prints one line: what happened and where the log is."""
    project.add_agent(
        "broken",
        agent_source(
            'raise ValueError("no feed")',
            result="",
        ),
    )
    result = invoke("run", "broken")
    assert result.exit_code == 1
    log = project.log_path("broken")
    assert result.output == f"agentops: broken: run() raised ValueError: no feed (log: {log})\n"


SPENDER = agent_source(
    """
    ctx.spend(usd=params.usd, tokens=params.tokens)
    return Result(ok=True)
    """,
    params="""
    usd: float = 0.0
    tokens: int = 0
    """,
    result="ok: bool",
)


def test_a_token_spend_larger_than_tokens_per_run_fails_in_one_line(project, invoke):
    """Like its dollar twin: one spend no run can fit is exit 1 and one line saying so."""
    project.add_agent("agent", SPENDER, "[limits]\ntokens_per_run = 1000\n")
    result = invoke("run", "agent", "-p", "tokens=5000")
    assert result.exit_code == 1
    log = project.log_path("agent")
    assert result.stderr == (
        "agentops: agent: a single spend of 5000 tokens is more than tokens_per_run 1000: "
        f"raise the cap or spend less per call (log: {log})\n"
    )
    assert invoke("run", "agent", "-p", "tokens=500").exit_code == 0, "nothing left waiting"


def test_a_run_a_budget_stops_says_so_once_and_the_skips_that_follow_are_quiet(project, invoke):
    """The run refused a spend prints one line (75); the runs skipped after it print nothing."""
    project.add_agent("agent", SPENDER, "[limits]\ncost_usd_per_hour = 1.0\n")
    assert invoke("run", "agent", "-p", "usd=0.75").exit_code == 0
    stopped = invoke("run", "agent", "-p", "usd=0.5")
    assert stopped.exit_code == 75
    assert len(stopped.stderr.splitlines()) == 1
    assert "agent: cost_usd_per_hour 1 reached (0.7500 spent, 0.5 more asked)" in stopped.stderr
    for _ in range(2):
        skipped = invoke("run", "agent", "-p", "usd=0.5")
        assert (skipped.exit_code, skipped.output) == (75, "")
    assert project.state("agent")["metrics"]["skipped"] == 2


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("timeout = 0\n", "timeout: must be longer than zero"),
        ("timeout = true\n", "timeout: expected a duration"),
        ('[ledger]\nkeep = "0s"\n', "ledger.keep: must be longer than zero"),
        (
            'schedule = "0 0 1 */2 *"\n\n[ledger]\nkeep = "30d"\n',
            "[ledger] keep is shorter than the schedule's longest interval",
        ),
        (
            "[limits]\nsteps_per_run = true\n",
            "limits.steps_per_run: Input should be a valid integer",
        ),
        ("[limits]\ntokens_per_run = false\n", "limits.tokens_per_run"),
        ("[circuit]\nfailures = true\n", "circuit.failures"),
    ],
    ids=[
        "timeout-0",
        "timeout-bool",
        "keep-0s",
        "keep-shorter-than-schedule",
        "steps-bool",
        "tokens-bool",
        "failures-bool",
    ],
)
def test_configuration_mistakes_are_exit_78_in_one_line(project, invoke, toml, expected):
    """A zero wait, a keep that forgets before the next run, a boolean for a number: 78."""
    project.add_agent("agent", toml=toml)
    result = invoke("run", "agent")
    assert result.exit_code == 78, result.output
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (project.home / "state" / "agent.json").exists()


def test_the_cli_does_not_wait_for_threads_left_running(project):
    """The CLI exits when the run ends; the thread's late side effect never happens.

    The thread waits for a file the test writes only once the process has
    exited: a CLI that waited for it would never exit (the subprocess's
    deadline only bounds that hang), and a thread that outlived it would write.
    """
    project.add_agent(
        "agent",
        agent_source(
            """
            threading.Thread(target=late, args=(ctx.home,)).start()
            return Result(ok=True)
            """,
            imports="import threading, time",
            extra="""
            def late(home):
                while not (home / "go").exists():
                    time.sleep(0.01)
                (home / "late-effect").write_text("")
            """,
        ),
    )
    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), "run", "agent"],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0
    (project.home / "go").write_text("")
    assert not (project.home / "late-effect").exists()
