"""agentops logs: readable or raw, every filter, -f in a real process ended by Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import queue
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from suite import AGENTOPS, cron_env

FAILING = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    fail: bool = False

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx: Context) -> Result:
    ctx.log.info("work.done", items=2)
    if params.fail:
        raise RuntimeError("the feed is down")
    return Result(ok=True)
"""


COUNTER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    runs: int

def run(params: Params, ctx: Context) -> Result:
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(runs=ctx.state["runs"])
"""


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def ran(project, invoke):
    """An agent run three times: succeeded, failed, succeeded."""
    project.add_agent("worker", FAILING)
    for fail in ("false", "true", "false"):
        invoke("run", "worker", "-p", f"fail={fail}")
    return project


def run_ids(project, name="worker") -> list[str]:
    seen: list[str] = []
    for event in project.events(name):
        if event["run_id"] not in seen:
            seen.append(event["run_id"])
    return seen


def test_readable_by_default(ran, invoke):
    """The console rendering, a line marking each run, and no JSON."""
    result = invoke("logs", "worker")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("--- run ")] == [
        f"--- run {run_id}" for run_id in run_ids(ran)
    ]
    assert sum("run.finished" in line for line in lines) == 3
    assert any("[error    ] run.failed" in line for line in lines)
    assert "Traceback" in result.output  # a failure's traceback, as a run shows it
    assert not any(line.startswith("{") for line in lines)
    assert "\x1b[" not in result.output  # no colours off a terminal


@pytest.mark.usefixtures("ran")  # a log to count from
def test_a_count_past_any_log_is_refused_in_one_line(invoke):
    """-n beyond what a machine could hold: exit 2 with the range, not a crash."""
    result = invoke("logs", "worker", "-n", "9" * 30)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "is not in the range 0<=x<=1000000000" in line


def test_json_prints_the_lines_as_they_are(ran, invoke):
    """--json: the file's own lines, byte for byte."""
    result = invoke("logs", "worker", "--json")
    assert result.exit_code == 0
    assert result.output == ran.log_path("worker").read_text()


def test_every_filter(ran, invoke):
    """--run, --last, --level, --event, --since and -n each narrow the lines; they combine."""
    ids = run_ids(ran)

    def shown(*args: str) -> list[dict]:
        result = invoke("logs", "worker", "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines()]

    assert {e["run_id"] for e in shown("--run", ids[1])} == {ids[1]}
    assert [e["event"] for e in shown("--last")] == ["run.started", "work.done", "run.finished"]
    assert {e["run_id"] for e in shown("--last")} == {ids[2]}
    assert [e["event"] for e in shown("--level", "error")] == ["run.failed"]
    assert [e["event"] for e in shown("--level", "WARNING")] == ["run.failed"]
    assert [e["event"] for e in shown("--event", "work.*")] == ["work.done"] * 3
    assert [e["event"] for e in shown("--event", "run.f*", "--run", ids[1])] == [
        "run.failed",
        "run.finished",
    ]
    assert len(shown("-n", "2")) == 2
    assert shown("-n", "2") == shown()[-2:]
    # a line from three hours ago is left out by --since 2h
    old = stamp(datetime.now(UTC) - timedelta(hours=3))
    with ran.log_path("worker").open("a") as file:
        file.write(json.dumps({"ts": old, "level": "info", "event": "old.news", "run_id": "x"}))
        file.write("\n")
    assert "old.news" in [e["event"] for e in shown()]
    assert "old.news" not in [e["event"] for e in shown("--since", "2h")]
    assert len(shown("--since", "2h")) == len(shown()) - 1


def test_a_traceback_field_that_is_not_text_is_shown_not_fatal(ran, invoke):
    """A hand-written line with a number as exception, a list as stack: shown as text."""
    with ran.log_path("worker").open("a") as file:
        file.write('{"ts": "2026-11-30T10:00:00Z", "event": "odd", "exception": 5, "stack": [1]}\n')
    result = invoke("logs", "worker")
    assert result.exit_code == 0, result.output
    assert "odd" in result.stdout


def test_lines_that_are_not_json_are_shown_not_fatal(ran, invoke):
    """Readable: shown as they are. --json: said on stderr, so stdout stays JSON lines."""
    path = ran.log_path("worker")
    with path.open("a") as file:
        file.write("this is not json\n")
    readable = invoke("logs", "worker")
    assert readable.exit_code == 0
    assert readable.output.splitlines()[-1] == "this is not json"
    raw = invoke("logs", "worker", "--json")
    assert raw.exit_code == 0
    assert raw.stdout == path.read_text().replace("this is not json\n", "")
    lineno = len(path.read_text().splitlines())
    assert raw.stderr == f"agentops: {path}:{lineno}: not a JSON line: this is not json\n"


def test_rotated_files_are_read_too(project, invoke):
    """With [logs] max_size the history spans files; logs shows all of it, oldest first."""
    (project.home / "agentops.toml").write_text('[logs]\nmax_size = "1KB"\nkeep = 9\n')
    project.add_agent("hello")
    for _ in range(6):
        invoke("run", "hello")
    assert project.log_path("hello").with_name("hello.jsonl.1").exists()
    result = invoke("logs", "hello", "--event", "run.finished", "--json")
    runs = [json.loads(line)["result"]["greeting"] for line in result.output.splitlines()]
    assert runs == ["Hello, world!"] * 6


@pytest.mark.usefixtures("ran")
def test_mistakes_are_one_line_with_their_exit_code(invoke):
    """--run with --last, a bad duration or level: usage (2); an unknown agent: 78."""
    both = invoke("logs", "worker", "--run", "x", "--last")
    assert both.exit_code == 2
    assert "--run and --last cannot be used together" in both.stderr
    assert invoke("logs", "worker", "--since", "soon").exit_code == 2
    assert invoke("logs", "worker", "--level", "loud").exit_code == 2
    assert invoke("logs", "../etc").exit_code == 2
    unknown = invoke("logs", "nobody")
    assert unknown.exit_code == 78
    assert (
        unknown.stderr == "agentops: unknown agent 'nobody': no agents/nobody/agent.toml, no log\n"
    )


def test_a_misspelt_agent_is_told_the_nearest_name(project, invoke):
    """logs and report, as every command: 78, and the agent meant."""
    project.add_agent("greeter")
    for command in ("logs", "report"):
        done = invoke(command, "greter")
        assert done.exit_code == 78
        assert done.stderr.rstrip().endswith("did you mean 'greeter'?"), done.stderr


def test_an_agent_that_never_ran_has_no_log_yet(project, invoke):
    """Nothing on stdout, one line saying so, exit 0; --last says there is no run."""
    project.add_agent("hello")
    result = invoke("logs", "hello")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "hello has no log yet" in result.stderr
    invoke("pause", "hello")  # a log, but no run in it
    last = invoke("logs", "hello", "--last")
    assert (last.exit_code, last.stdout) == (0, "")
    assert last.stderr == "agentops: hello: no run in its log yet\n"


def test_the_log_of_a_removed_agent_can_still_be_read(ran, invoke):
    """The log is the history: it outlives agents/<name>/."""
    shutil.rmtree(ran.home / "agents" / "worker")  # its __pycache__ too
    assert invoke("logs", "worker", "--last").exit_code == 0


def test_a_folder_not_named_as_an_agent_stops_neither_logs_nor_report(ran, invoke):
    """agents/MyAgent/ (copied by hand) is no agent: every log and report still reads."""
    shutil.copytree(ran.home / "agents" / "worker", ran.home / "agents" / "MyAgent")
    for command in (("logs",), ("logs", "worker", "--last"), ("report",), ("report", "worker")):
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        assert "run.finished" in result.stdout or "worker" in result.stdout
        assert "MyAgent" not in result.output


def test_colours_on_a_terminal_only(ran):
    """On a TTY the lines are coloured as a run colours them; the same text otherwise."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(AGENTOPS), "--home", str(ran.home), "logs", "worker", "--last"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**cron_env(ran.home), "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    output = b"".join(chunks).decode()
    assert "\x1b[" in output
    assert "run.finished" in output


class Follower:
    """`agentops logs -f` in a real process: its output read line by line as it comes."""

    def __init__(self, home, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(AGENTOPS), "--home", str(home), "logs", *args, "-f"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cron_env(home),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.put(text.rstrip("\n"))

    def take(self, count: int, timeout: float = 30) -> list[str]:
        """The next ``count`` lines of output, waiting for them."""
        deadline = time.monotonic() + timeout
        return [self.lines.get(timeout=max(0.1, deadline - time.monotonic())) for _ in range(count)]

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit code and what it said on stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        finally:
            self.process.kill()
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def test_follow_in_a_real_process_through_a_rotation_until_ctrl_c(project, run_agentops):
    """-f with a filter: new runs appear as they end, across a rotation; Ctrl-C exits 0, quietly."""
    (project.home / "agentops.toml").write_text('[logs]\nmax_size = "1KB"\nkeep = 3\n')
    project.add_agent("hello", COUNTER)
    assert run_agentops("run", "hello").returncode == 0
    follower = Follower(project.home, "hello", "--event", "run.finished", "--json")
    try:
        first = json.loads(follower.take(1)[0])
        assert first["result"]["runs"] == 1
        rotated = project.log_path("hello").with_name("hello.jsonl.1")
        count = 1
        while not rotated.exists() or count < 5:
            assert run_agentops("run", "hello").returncode == 0
            count += 1
            line = json.loads(follower.take(1)[0])
            assert (line["event"], line["result"]["runs"]) == ("run.finished", count)
        assert follower.lines.empty()
    finally:
        code, stderr = follower.interrupt()
    assert code == 0
    assert stderr == ""


def test_follow_readable_and_last(ran, run_agentops):
    """-f --last keeps to the last run; readable lines come as they are written."""
    follower = Follower(ran.home, "worker", "--last")
    try:
        header, *lines = follower.take(4)
        assert header.startswith("--- run ")
        assert [line.split("]")[1].split()[0] for line in lines] == [
            "run.started",
            "work.done",
            "run.finished",
        ]
        assert run_agentops("run", "worker").returncode == 0
        time.sleep(1)  # lines of another run: not shown
        assert follower.lines.empty()
    finally:
        code, stderr = follower.interrupt()
    assert (code, stderr) == (0, "")


def merged_logs(project) -> None:
    """Two agents whose runs interleave in time, and one that never ran."""
    base = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    for name, minutes in (("alpha", (0, 20)), ("beta", (10, 30))):
        project.add_agent(name)
        lines = []
        for minute in minutes:
            at = base + timedelta(minutes=minute)
            run_id = f"{at:%Y%m%dT%H%M%SZ}-{name[:3]}"
            for second, event in enumerate(("run.started", "work.done", "run.finished")):
                ts = stamp(at + timedelta(seconds=second))
                lines.append(
                    json.dumps(
                        {"ts": ts, "level": "info", "event": event, "agent": name, "run_id": run_id}
                    )
                )
        project.log_path(name).parent.mkdir(exist_ok=True)
        project.log_path(name).write_text("\n".join(lines) + "\n")
    project.add_agent("idle")


def test_without_an_agent_every_log_is_merged_by_time(project, invoke):
    """Lines of every agent in time order; readable, a '--- AGENT run' line where one begins."""
    merged_logs(project)
    raw = invoke("logs", "--json")
    assert raw.exit_code == 0, raw.output
    lines = [json.loads(text) for text in raw.stdout.splitlines()]
    assert [line["ts"] for line in lines] == sorted(line["ts"] for line in lines)
    assert [line["agent"] for line in lines] == ["alpha"] * 3 + ["beta"] * 3 + ["alpha"] * 3 + [
        "beta"
    ] * 3
    readable = invoke("logs").stdout.splitlines()
    headers = [text for text in readable if text.startswith("---")]
    assert headers == [
        "--- alpha run 20261122T030000Z-alp",
        "--- beta run 20261122T031000Z-bet",
        "--- alpha run 20261122T032000Z-alp",
        "--- beta run 20261122T033000Z-bet",
    ]
    last = [json.loads(text) for text in invoke("logs", "--json", "-n", "4").stdout.splitlines()]
    assert [(line["agent"], line["event"]) for line in last] == [
        ("alpha", "run.finished"),
        ("beta", "run.started"),
        ("beta", "work.done"),
        ("beta", "run.finished"),
    ]
    runs = [json.loads(text) for text in invoke("logs", "--last", "--json").stdout.splitlines()]
    assert {line["run_id"] for line in runs} == {
        "20261122T032000Z-alp",
        "20261122T033000Z-bet",
    }
    assert [line["agent"] for line in runs] == ["alpha"] * 3 + ["beta"] * 3


def test_without_an_agent_or_any_agent(invoke):
    """No agents at all: said, exit 0."""
    result = invoke("logs")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "agentops: no agents\n")


def test_follow_starts_with_the_last_ten_lines_as_tail_does(project):
    """-f alone shows the last 10 lines first; -n says how many; then what is appended."""
    project.add_agent("busy")
    path = project.log_path("busy")
    path.parent.mkdir()
    at = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    lines = [
        json.dumps({"ts": stamp(at), "level": "info", "event": f"step.{i}", "run_id": "r"})
        for i in range(25)
    ]
    path.write_text("\n".join(lines) + "\n")
    for args, first in (((), 15), (("-n", "3"), 22)):
        follower = Follower(project.home, "busy", "--json", *args)
        try:
            shown = [json.loads(text)["event"] for text in follower.take(25 - first)]
            assert shown == [f"step.{i}" for i in range(first, 25)]
            with path.open("a") as file:
                file.write(lines[0].replace("step.0", "appended") + "\n")
            assert json.loads(follower.take(1)[0])["event"] == "appended"
            assert follower.lines.empty()
        finally:
            assert follower.interrupt() == (0, "")
        path.write_text("\n".join(lines) + "\n")
