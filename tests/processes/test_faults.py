"""Fault injection: each step of each file a run writes fails in turn, and nothing is lost.

The agent below posts (a guarded action whose effect is a line in
``effects.txt``), spends, and counts its posts in ``ctx.state``. A case runs
it once healthy, once with one step of one file failing with ENOSPC, EIO or
EACCES (:class:`faults.FaultyFileSystem`), and once healthy again, then checks:

- the faulty run ends with the documented code and one line: 74 when the
  lock, the journal, the ledger or the state cannot be written; the outcome
  unchanged when only the log or the last attempt cannot be;
- what was committed before still loads: every file is its old or its new
  version, never a torn one;
- after the healthy run every post happened exactly once and every cost
  incurred is counted exactly once;
- never a traceback, never an unexpected error (exit 70).

The runs are in-process, made as cron's ``agentops run --scheduled`` makes
them (``exit_on_abandon``, ``scheduled``), in a project whose logs rotate at
1KB: the deadline marker, the tick claim and the log rotation are written too.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import resource
import signal
import subprocess
from collections import Counter
from typing import NamedTuple

import pytest

from agentops.model.ledger import COMMITTED
from agentops.ops.admin import reset_circuit
from agentops.project.home import Project as AgentopsProject
from agentops.run.options import RunOptions
from agentops.run.runner import run_agent
from agentops.store.file import FileStore
from faults import FaultyFileSystem
from suite import AGENTOPS, cron_env

AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    posted: str

def note(ctx, name, line):
    with (ctx.home / name).open("a") as file:
        file.write(line + "\\n")

def posted(ctx):
    path = ctx.home / "effects.txt"
    return path.read_text().split() if path.exists() else []

def run(params: Params, ctx: Context) -> Result:
    n = ctx.state.get("n", 0) + 1
    ctx.spend(usd=0.01, tokens=10)
    note(ctx, "costs.txt", ctx.run_id)  # the cost is incurred once it is recorded
    key = f"post-{n}"

    def post():
        note(ctx, "effects.txt", key)
        return {"url": key}

    ctx.action("post", key, post)
    ctx.log.info("post.sent", key=key, text="." * 1000)  # rotated at the next run: 1KB logs
    ctx.state["n"] = n
    return Result(posted=key)

def reconcile(action, key, ctx):
    # Asked about a post whose commit record was lost: the effects file knows.
    return {"url": key} if key in posted(ctx) else False
"""

AGENT_TOML = 'schedule = "@hourly"\n'

PROJECT_TOML = '[logs]\nmax_size = "1KB"\nkeep = 2\n'

ERRORS = [errno.ENOSPC, errno.EIO, errno.EACCES]


class Place(NamedTuple):
    """Where in a run a step fails: the file it is about, and which calls of each step."""

    name: str
    where: str
    """An fnmatch pattern of the file (or directory) the steps are about."""
    steps: dict[str, tuple[int, ...]]
    """step -> the calls of it (1-based, on matching files) to fail, one case each."""
    stops: bool = True
    """The run ends with 74; otherwise its outcome is what it would have been."""


JOURNAL = "*/state/pub.journal"

SAVE = {
    "mkdir": (1,),
    "unlink": (1, 2),
    "open": (1,),
    "write": (1,),
    "fsync": (1,),
    "close": (1,),
    "link": (1,),
    "rename": (1, 2),
    "fsync_dir": (1,),
}
"""Saving a file that has a previous version: unlink 1 clears the .tmp, unlink 2 the
.bak.tmp; link makes the .bak.tmp, rename 1 turns it into the .bak, rename 2
puts the new file in place."""

SAVE_UNSYNCED = {step: calls for step, calls in SAVE.items() if step not in ("fsync", "fsync_dir")}
"""Saving a record whose loss in a power cut costs nothing: no fsync."""

PLACES = [
    Place("lock", "*/home/state", {"mkdir": (1,)}),
    # The marker is a local file whatever the store: its directory is made if need be.
    Place("deadline marker", "*/home/state", {"mkdir": (2,)}),
    Place("lock", "*/state/pub.lock", {"open": (1,)}),
    # unlink 1 clears a stale marker as the run starts, unlink 2 removes its own at
    # the end: a run that cannot write its marker stops; one that cannot remove it
    # is over, and the marker it leaves says only that it ended in time.
    Place("deadline marker", "*/state/pub.deadline", {"unlink": (1,), "open": (1,), "write": (1,)}),
    Place(
        "deadline marker removal",
        "*/state/pub.deadline",
        {"unlink": (2,), "close": (1,)},
        stops=False,
    ),
    # A tick claim replaces the last one, with no .bak: a claim lost costs nothing.
    Place(
        "tick claim",
        "*/state/pub.tick",
        {"mkdir": (1,), "unlink": (1,), "open": (1,), "write": (1,), "close": (1,), "rename": (1,)},
    ),
    Place(
        "journal creation",
        JOURNAL,
        {
            "mkdir": (1,),
            "unlink": (1,),
            "open": (1,),
            "write": (1,),
            "fsync": (1,),
            "rename": (1,),
            "fsync_dir": (1,),
        },
    ),
    # The journal's records in order: begin, spend, intent, commit. The commit is
    # written but not fsynced: the commit of the state makes it durable. The
    # spend's is the first to need space zero-filled ahead of the records.
    Place("journal fill ahead", JOURNAL, {"zero_fill": (1,)}),
    Place("spend record", JOURNAL, {"write": (2,), "fsync": (2,)}),
    Place("intent record", JOURNAL, {"write": (3,), "fsync": (3,)}),
    Place("commit record", JOURNAL, {"write": (4,)}),
    Place("ledger save", "*/state/pub.ledger.json", SAVE),
    Place("state save", "*/state/pub.json", SAVE),
    Place("journal removal", JOURNAL, {"unlink": (2,)}),
    # The state holding its records is committed: a close that fails loses nothing.
    Place("journal close", JOURNAL, {"close": (1,)}, stops=False),
    Place(
        "attempt record",
        "*/state/pub.attempt.json",
        {"mkdir": (1,), "unlink": (1,), "open": (1,), "write": (1,), "close": (1,), "rename": (1,)},
        stops=False,
    ),
    Place("log file", "*/home/logs", {"mkdir": (1,)}, stops=False),
    Place("log file", "*/logs/pub.jsonl", {"open": (1,), "write": (1, 2)}, stops=False),
    # Open 1 finds the log full: it is closed, pub.jsonl.2 dropped, .1 renamed .2
    # (rename 1), the log renamed .1 (rename 2), and a new one opened.
    Place("log rotation", "*/logs/pub.jsonl", {"close": (1,), "open": (2,)}, stops=False),
    Place("log rotation", "*/logs/pub.jsonl.*", {"unlink": (1,), "rename": (1, 2)}, stops=False),
]

SAMPLED = {("*/logs/pub.jsonl", "write")}
"""Steps called too often to fail each call: the log writes a line per event, and the
first two failures stand for all (the sink gives up on its file at the first)."""

SRC_BUGS: dict[str, str] = {}
"""Places where src is known wrong: their cases are strict xfails naming the cause."""


def cases(places: list[Place]) -> list[object]:
    """One pytest.param per step and call of each place, marked when src is known wrong."""
    return [
        pytest.param(
            place,
            step,
            nth,
            id=f"{place.name}-{step}" + (f"{nth}" if len(calls) > 1 else ""),
            marks=[pytest.mark.xfail(strict=True, reason=SRC_BUGS[place.name])]
            if place.name in SRC_BUGS
            else [],
        )
        for place in places
        for step, calls in place.steps.items()
        for nth in calls
    ]


# -- helpers --------------------------------------------------------------------------------


def faulty(step: str | None = None, **fault) -> FaultyFileSystem:
    """Real files; fsyncs counted, not made: no test here cuts the power, and it halves the time."""
    return FaultyFileSystem(step, power_cuts=False, **fault)


def run(project, clock, fs=None):
    """One run of the agent an hour after the last, as the CLI makes it."""
    clock.advance(hours=1)
    return run_agent(
        AgentopsProject(project.home),
        "pub",
        environ={},
        fs=fs if fs is not None else faulty(),
        clock=clock,
        exit_on_abandon=True,
        scheduled=True,
    )


def make_home(project) -> None:
    """The agent, a project whose logs rotate at 1KB keeping two, and an old rotated log."""
    project.add_agent("pub", AGENT, AGENT_TOML)
    (project.home / "agentops.toml").write_text(PROJECT_TOML)
    old_log = project.home / "logs" / "pub.jsonl.1"
    old_log.parent.mkdir()
    old_log.write_text('{"event": "run.finished"}\n')


def lines(project, name: str) -> list[str]:
    path = project.home / name
    return path.read_text().split() if path.exists() else []


def assert_one_clean_line(outcome, capsys, *, stops: bool, log_broken: bool, error: int) -> None:
    """The documented code and one line naming the problem; no traceback anywhere."""
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err + outcome.message
    assert "\n" not in outcome.message
    if stops:
        assert outcome.exit_code == 74, outcome.message
        assert outcome.message.endswith(os.strerror(error)), outcome.message
    else:
        assert (outcome.exit_code, outcome.message) == (0, "pub: succeeded")
    said = err.splitlines()
    if log_broken:
        assert len(said) == 1
        assert said[0].startswith("agentops: cannot write the log ")
        assert said[0].endswith(os.strerror(error))
    else:
        assert said == []
    assert out == ""


def assert_committed_survives(project) -> None:
    """What the healthy first run committed still loads, and no file is torn."""
    store = FileStore(project.home / "state")
    state = store.load("pub")
    assert state.data["n"] in {1, 2}  # the old version, or the new one
    assert state.metrics.tokens >= 10
    assert store.load_ledger("pub").get("post", "post-1").status == COMMITTED
    for path in (project.home / "state").glob("pub.*json*"):
        json.loads(path.read_bytes())  # the state, the ledger, their .bak: whole
    assert not list((project.home / "state").glob("*.json.tmp"))


def assert_nothing_lost_or_repeated(project) -> None:
    """Every post happened once, and the state counts each one and each cost exactly once."""
    store = FileStore(project.home / "state")
    state = store.load("pub")
    n = state.data["n"]
    assert lines(project, "effects.txt") == [f"post-{i}" for i in range(1, n + 1)]
    ledger = store.load_ledger("pub")
    assert [ledger.get("post", f"post-{i}").status for i in range(1, n + 1)] == [COMMITTED] * n
    assert state.metrics.tokens == 10 * len(lines(project, "costs.txt"))
    assert store.pending("pub") is None
    assert "run.crashed" not in project.event_names("pub")


# -- the matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
@pytest.mark.parametrize(("place", "step", "nth"), cases(PLACES))
def test_a_failed_step_keeps_what_was_committed(project, clock, capsys, place, step, nth, error):
    """One step fails: one line and the documented code; the next run loses and repeats nothing."""
    make_home(project)
    assert run(project, clock).exit_code == 0
    capsys.readouterr()
    fs = faulty(step, nth=nth, where=place.where, error=error)

    outcome = run(project, clock, fs=fs)

    assert fs.failed is not None, f"{step} {nth} of {place.where} was never called"
    log_broken = place.name.startswith("log ")
    assert_one_clean_line(outcome, capsys, stops=place.stops, log_broken=log_broken, error=error)
    assert_committed_survives(project)
    if not place.stops:
        assert FileStore(project.home / "state").load("pub").data == {"n": 2}
    final = run(project, clock)
    assert final.exit_code == 0, final.message
    assert_nothing_lost_or_repeated(project)


def test_the_matrix_covers_every_step_of_every_file_a_run_writes(project, clock):
    """Each step a healthy run takes, on each file it writes, is a case; each case is reached."""
    make_home(project)
    run(project, clock)  # so the second run saves over a previous version, with backups
    fs = faulty()
    assert run(project, clock, fs=fs).exit_code == 0
    seen: Counter[tuple[str, str]] = Counter()
    for step, subject in fs.trace:
        patterns = {p.where for p in PLACES if fnmatch.fnmatchcase(subject, p.where)}
        assert len(patterns) == 1, f"{step} of {subject} belongs to no place, or to several"
        seen[patterns.pop(), step] += 1
    listed: dict[tuple[str, str], set[int]] = {}
    for place in PLACES:
        for step, calls in place.steps.items():
            listed.setdefault((place.where, step), set()).update(calls)
    assert set(listed) == set(seen)
    for key, calls in listed.items():
        every = set(range(1, seen[key] + 1))
        assert calls <= every if key in SAMPLED else calls == every, key


def test_a_tick_claim_is_saved_as_a_tick(project, clock):
    """Claims replace each other with no pub.tick.bak; a claim that fails names the tick."""
    make_home(project)
    run(project, clock)
    run(project, clock)  # the second claim replaces the first
    outcome = run(project, clock, fs=faulty("write", where="*/pub.tick"))
    assert outcome.exit_code == 74
    assert "cannot save state" not in outcome.message, outcome.message
    assert not (project.home / "state" / "pub.tick.bak").exists()


# -- recovering a run that died -------------------------------------------------------------

RECOVERY = [
    Place("recovered ledger save", "*/state/pub.ledger.json", SAVE),
    Place("recovered state save", "*/state/pub.json", SAVE),
    Place("recovered journal removal", JOURNAL, {"unlink": (1,)}),
]


def leave_a_dead_run(project, clock) -> None:
    """A healthy run, then one whose ledger cannot be saved, left as if it was killed.

    Its journal stays (with its spend and its post), and so does its deadline
    marker, as after a kill -9.
    """
    assert run(project, clock).exit_code == 0
    dying = run(project, clock, fs=faulty("write", where="*/pub.ledger.json"))
    assert dying.exit_code == 74
    assert (project.home / "state" / "pub.journal").exists()
    marker = {"run_id": dying.run_id, "started_at": clock().isoformat()}
    (project.home / "state" / "pub.deadline").write_text(json.dumps(marker) + "\n")


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
@pytest.mark.parametrize(("place", "step", "nth"), cases(RECOVERY))
def test_a_failed_recovery_keeps_the_journal_to_fold_again(
    project, clock, capsys, place, step, nth, error
):
    """Folding a dead run's journal in fails: 74, the journal stays, and the next run folds it."""
    make_home(project)
    leave_a_dead_run(project, clock)
    capsys.readouterr()
    fs = faulty(step, nth=nth, where=place.where, error=error)

    outcome = run(project, clock, fs=fs)

    assert fs.failed is not None
    assert_one_clean_line(outcome, capsys, stops=True, log_broken=False, error=error)
    assert_committed_survives(project)
    assert (project.home / "state" / "pub.journal").exists()
    final = run(project, clock)
    assert final.exit_code == 0, final.message
    assert_nothing_lost_or_repeated(project)
    assert lines(project, "effects.txt") == ["post-1", "post-2"]  # the dead run's post counts


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
def test_a_dead_runs_marker_that_cannot_be_removed_is_recorded_once(project, clock, capsys, error):
    """The marker stays (logged): the run goes on, and the next one records nothing twice."""
    make_home(project)
    leave_a_dead_run(project, clock)
    capsys.readouterr()
    fs = faulty("unlink", where="*/state/pub.deadline", error=error)

    outcome = run(project, clock, fs=fs)

    assert fs.failed is not None
    assert outcome.exit_code == 0, outcome.message
    assert "deadline.marker_left" in project.event_names("pub")
    runs = project.state("pub")["metrics"]["runs"]
    assert run(project, clock).exit_code == 0
    assert project.state("pub")["metrics"]["runs"] == runs + 1, "the dead run is not counted again"
    assert_nothing_lost_or_repeated(project)


# -- an operator's edit --------------------------------------------------------------------

EDIT = [
    Place("lock", "*/state/pub.lock", {"open": (1,)}),
    Place("state save", "*/state/pub.json", SAVE),
]


@pytest.mark.parametrize(("place", "step", "nth"), cases(EDIT))
def test_an_operators_edit_that_cannot_save_is_74_and_keeps_the_state(
    project, clock, capsys, place, step, nth
):
    """`agentops reset --circuit` meeting a fault: 74, one line, what was committed still there."""
    make_home(project)
    assert run(project, clock).exit_code == 0
    capsys.readouterr()
    fs = faulty(step, nth=nth, where=place.where, error=errno.ENOSPC)

    outcome = reset_circuit(
        AgentopsProject(project.home), "pub", options=RunOptions(fs=fs, clock=clock)
    )

    assert fs.failed is not None
    assert_one_clean_line(outcome, capsys, stops=True, log_broken=False, error=errno.ENOSPC)
    assert_committed_survives(project)
    assert run(project, clock).exit_code == 0
    assert_nothing_lost_or_repeated(project)


# -- a real full disk, through the CLI ------------------------------------------------------


def no_bytes_more() -> None:
    """In the child: every write that would grow a file fails with EFBIG, not a signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_a_disk_that_takes_no_more_bytes_stops_the_run_with_74(project, run_agentops):
    """A real `agentops run` that can write no byte exits 74 with one line; nothing changed."""
    make_home(project)
    assert run_agentops("run", "pub").returncode == 0
    before = project.snapshot()

    result = subprocess.run(
        [str(AGENTOPS), "--home", str(project.home), "run", "pub"],
        env=cron_env(project.home, PYTHONDONTWRITEBYTECODE="1"),  # no torn .pyc either
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=no_bytes_more,  # only setrlimit and signal: safe before exec
        check=False,
    )

    assert "Traceback" not in result.stderr
    assert result.returncode == 74, result.stderr
    said = result.stderr.splitlines()
    assert said[-1].startswith("agentops: ")
    assert len(said) <= 2  # the run's line, and perhaps the log's
    assert project.snapshot() == before
    assert run_agentops("run", "pub").returncode == 0
    assert_nothing_lost_or_repeated(project)
