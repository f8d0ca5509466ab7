"""`agentops run` as cron runs it: real subprocesses, minimal environment, no TTY."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from suite import AGENTOPS, agent_source, cron_env, eventually


def test_run_under_crons_minimal_environment(project, run_agentops):
    """env -i PATH=/usr/bin:/bin: a run succeeds silently and writes state and log."""
    project.add_agent("hello")
    result = run_agentops("run", "hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert project.state("hello")["data"] == {"runs": 1}
    assert project.event_names("hello") == ["run.started", "run.finished"]


def test_failure_under_cron_prints_exactly_one_line(project, run_agentops):
    """A failing run prints one line to stderr (cron mails it) and nothing to stdout."""
    project.add_agent(
        "boom",
        agent_source(
            'raise RuntimeError("disk on fire")',
            result="",
        ),
    )
    result = run_agentops("run", "boom")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"agentops: boom: run() raised RuntimeError: disk on fire (log: {project.log_path('boom')})"
    ]


BLOCKING = agent_source(
    """
    import os
    with (ctx.home / "executions").open("a") as f:
        f.write(f"{os.getpid()}\\n")
    while not (ctx.home / "release").exists():
        time.sleep(0.02)
    return Result(pid=os.getpid())
    """,
    result="pid: int",
    imports="""
    import time
    from pathlib import Path
    """,
)


def test_overlapping_runs_execute_exactly_once(project):
    """Five simultaneous runs: one executes, four exit 75 and log run.skipped reason=overlap."""
    project.add_agent("slow", BLOCKING)
    command = [str(AGENTOPS), "--home", str(project.home), "run", "slow"]
    procs = [
        subprocess.Popen(
            command, env=cron_env(project.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(5)
    ]
    # The holder waits for the release file, so the others must meet the lock.
    assert eventually(lambda: sum(p.poll() is not None for p in procs) >= 4)
    (project.home / "release").write_text("")
    codes = sorted(p.wait(timeout=120) for p in procs)
    outputs = [p.communicate() for p in procs]
    assert codes == [0, 75, 75, 75, 75]
    assert all(out == (b"", b"") for out in outputs), "skips are silent under cron"
    assert len((project.home / "executions").read_text().splitlines()) == 1
    skipped = [e for e in project.events("slow") if e["event"] == "run.skipped"]
    assert [e["reason"] for e in skipped] == ["overlap"] * 4


def test_rate_limit_holds_across_processes(project, run_agentops):
    """runs = "2/hour" counted in the state file: the third process is skipped (75)."""
    project.add_agent("hello", toml='[limits]\nruns = "2/hour"\n')
    codes = [run_agentops("run", "hello").returncode for _ in range(3)]
    assert codes == [0, 0, 75]
    state = project.state("hello")
    assert state["metrics"]["runs"] == 2
    assert state["metrics"]["skipped"] == 1
    assert len(state["rate_limits"]["runs"]) == 2


BIG_STATE = agent_source(
    """
    version = ctx.state.get("version", 0) + 1
    ctx.state["version"] = version
    # About 4 MB of state, so saving it takes long enough to be killed midway.
    ctx.state["payload"] = [f"{version}-{i:07d}-" + "x" * 40 for i in range(80_000)]
    return Result(version=version)
    """,
    result="version: int",
)


def test_sigkill_at_random_moments_never_corrupts_state(project):
    """kill -9 during runs that save a large state: the file always parses, old or new.

    Each moment is random within the run: once its run.started line is
    logged, whatever time the process took to get there.
    """
    project.add_agent("big", BIG_STATE)
    command = [str(AGENTOPS), "--home", str(project.home), "run", "big"]
    assert subprocess.run(command, env=cron_env(project.home), check=False).returncode == 0
    rng = random.Random(1234)
    kills = 0
    for _ in range(25):
        before = project.state("big")["data"]["version"]
        started = project.event_names("big").count("run.started")
        proc = subprocess.Popen(command, env=cron_env(project.home))
        assert eventually(
            lambda count=started, proc=proc: (
                project.event_names("big").count("run.started") > count or proc.poll() is not None
            )
        )
        time.sleep(rng.uniform(0, 0.2))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        state = json.loads(project.state_path("big").read_text())
        assert state["data"]["version"] in (before, before + 1)
        payload = state["data"]["payload"]
        assert len(payload) == 80_000
        assert payload[-1].startswith(f"{state['data']['version']}-")
    assert kills >= 10, f"the timings must actually interrupt runs: {kills} kills"
    final = subprocess.run(command, env=cron_env(project.home), check=False)
    assert final.returncode == 0, "the next run after a kill works normally"
    assert not list(project.home.joinpath("state").glob("*.tmp")), "no temp file left by success"


def bad_input_cases():
    good = 'schedule = "@hourly"\n'
    return [
        # name, agent.toml, agent.py, args, exit code, text in the one line
        ("unknown agent", good, None, ["run", "ghost"], 78, "unknown agent 'ghost'"),
        ("invalid name", good, None, ["run", "../hello"], 2, "invalid agent name"),
        ("bad params", good, None, ["run", "hello", "-p", "count=lots"], 65, "params rejected"),
        ("bad TOML", "schedule = \n", None, ["run", "hello"], 78, "bad TOML"),
        (
            "unknown key",
            'shedule = "@hourly"\n',
            None,
            ["run", "hello"],
            78,
            "unknown key 'shedule'",
        ),
        ("bad schedule", 'schedule = "61 * * * *"\n', None, ["run", "hello"], 78, "'61 * * * *'"),
        ("no run()", good, "x = 1\n", ["run", "hello"], 78, "defines no run(params, ctx)"),
        (
            "import error",
            good,
            "import nonexistent_module_xyz\n",
            ["run", "hello"],
            78,
            "ModuleNotFoundError",
        ),
        (
            "bad cron list",
            'schedule = "bad"\n',
            None,
            ["cron"],
            78,
            "'bad' is not a cron expression",
        ),
    ]


COUNTING = agent_source(
    """
    ctx.state["count"] = params.count
    return Result(count=params.count)
    """,
    params="count: int = 1",
    result="count: int",
)


@pytest.mark.parametrize(
    ("toml", "code", "args", "exit_code", "text"),
    [case[1:] for case in bad_input_cases()],
    ids=[case[0] for case in bad_input_cases()],
)
def test_bad_input_one_line_exit_code_nothing_changed(
    project, run_agentops, toml, code, args, exit_code, text
):
    """Each bad input: its exit code, one line on stderr, no state file changed."""
    project.add_agent("hello", COUNTING)
    assert project.run("hello").exit_code == 0
    before = project.snapshot()
    project.add_agent("hello", code or COUNTING, toml)
    result = run_agentops(*args)
    assert result.returncode == exit_code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentops: ")
    assert text in lines[0]
    assert "Traceback" not in result.stderr
    assert project.snapshot() == before


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b"\x00\x01garbage", "not JSON"),
        (b'{"schema_version": 1, "agent": "hello", "metrics": {"runs": "many"}}', "metrics.runs"),
        (b'{"schema_version": 99, "agent": "hello"}', "newer agentops"),
        (b'{"schema_version": 1, "agent": "other"}', "agent 'other'"),
        (b'{"schema_version": 1, "agent": "hello", "surprise": 1}', "unknown key 'surprise'"),
        (b"", "not JSON"),
    ],
    ids=["garbage", "wrong type", "future schema", "other agent", "unknown key", "empty"],
)
def test_unreadable_state_exits_74_and_is_kept_byte_for_byte(project, run_agentops, content, text):
    """A corrupt or hand-edited state file: exit 74, one line naming it, bytes unchanged."""
    project.add_agent("hello", COUNTING)
    path = project.state_path("hello")
    path.parent.mkdir()
    path.write_bytes(content)
    result = run_agentops("run", "hello")
    assert result.returncode == 74
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert text in lines[0]
    assert path.read_bytes() == content
    assert not path.with_name("hello.json.bak").exists()


HOLD_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_lock_held_by_another_process_skips_with_75(project, run_agentops):
    """While another process holds the agent's lock, a run exits 75 silently."""
    project.add_agent("hello")
    lock = project.home / "state" / "hello.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_LOCK,
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_agentops("run", "hello")
        assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
        assert not project.state_path("hello").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_agentops("run", "hello").returncode == 0, (
        "the kernel released the dead holder's lock"
    )


def test_a_closed_pipe_ends_a_listing_quietly(project, run_agentops):
    """`agentops ledger X --all | head -1`: no 'internal error' when head stops reading."""
    project.add_agent(
        "many",
        agent_source(
            """
            for i in range(3000):
                ctx.action("note", key=str(i), do=lambda: None)
            return Result(ok=True)
            """,
            result="ok: bool",
        ),
    )
    assert run_agentops("run", "many").returncode == 0
    shell = f"{AGENTOPS} --home {project.home} ledger many --all | head -1"
    result = subprocess.run(
        ["/bin/sh", "-c", shell], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout.split() == ["ACTION", "KEY", "STATUS", "AT", "RUN"]
    assert result.stderr == ""


def test_an_unreadable_state_line_stays_short(project, run_agentops):
    """Thousands of bad ledger entries are counted, not listed: the line stays one line."""
    project.add_agent("hello")
    path = project.state_path("hello")
    path.parent.mkdir()
    bad = {f"k{i}": {"status": "committed"} for i in range(2000)}
    path.write_text(json.dumps({"agent": "hello", "ledger": {"publish": bad}}))
    result = run_agentops("run", "hello")
    assert result.returncode == 74
    assert "and 1995 more" in result.stderr
    assert len(result.stderr) < 1000
