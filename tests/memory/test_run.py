"""ctx.memory: working memory with a time to live, long-term notes ranked as Generative Agents.

Working memory lives in the state file and notes in ``state/<name>.memory.sqlite``;
both follow the run's transaction as ``ctx.state`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from agentops._infra.fs import FileSystem
from agentops._infra.redact import Redactor
from agentops.memory.run import RunMemory
from agentops.model.state import AgentState, Remembered
from agentops.project.config import MemoryConfig
from leakscan import FAKE_SECRETS, scan_tree
from suite import MEMO, T0, agent_source, memory_path, stored_notes


def run_memory(tmp_path, clock, **kwargs) -> RunMemory:
    defaults = {
        "agent": "a",
        "run_id": "r1",
        "working": {},
        "config": MemoryConfig(),
        "path": tmp_path / "state" / "a.memory.sqlite",
        "clock": clock,
        "redactor": Redactor({}),
        "fs": FileSystem(),
    }
    return RunMemory(**(defaults | kwargs))


# -- working memory ----------------------------------------------------------------------


def test_remember_recall_forget_and_expiry_by_the_runs_clock(tmp_path, clock):
    """A value is recalled until its ttl has passed on the injected clock, and forgotten at once."""
    memory = run_memory(tmp_path, clock)
    memory.remember("topic", {"n": 1}, ttl="2h")
    memory.remember("cursor", 42, ttl=90)
    memory.remember("forever", "x")
    assert memory.recall("topic") == {"n": 1}
    clock.advance(seconds=89)
    assert memory.recall("cursor") == 42
    clock.advance(seconds=1)
    assert memory.recall("cursor") is None  # exactly at its expiry it is gone
    assert memory.recall("cursor", "gone") == "gone"
    clock.advance(hours=2)
    assert memory.recall("topic") is None
    assert memory.recall("forever") == "x"
    memory.forget("forever")
    memory.forget("never-there")
    assert memory.recall("forever") is None
    assert not (tmp_path / "state").exists()  # working memory never touches the notes file


def test_remembered_values_are_copies(tmp_path, clock):
    """Changing an object after remembering it, or what recall returned, changes nothing kept."""
    memory = run_memory(tmp_path, clock)
    value = {"items": [1, 2]}
    memory.remember("v", value)
    value["items"].append(3)
    memory.recall("v")["items"].append(4)
    assert memory.recall("v") == {"items": [1, 2]}


@pytest.mark.parametrize(
    ("key", "value", "ttl", "error"),
    [
        ("k", float("nan"), None, ValueError),
        ("k", object(), None, ValueError),
        ("k", {"deep": 1e400}, None, ValueError),
        ("k", 1, 0, ValueError),
        ("k", 1, "-5m", ValueError),
        ("k", 1, "soon", ValueError),
        ("k", 1, True, ValueError),
        (3, 1, None, TypeError),
        ("", 1, None, TypeError),
        ("\udc80", 1, None, ValueError),
    ],
)
def test_remember_refuses_what_the_state_file_could_not_hold(
    tmp_path, clock, key, value, ttl, error
):
    """Values must be JSON and finite (as ctx.state's), ttls durations, keys non-empty strs."""
    memory = run_memory(tmp_path, clock)
    with pytest.raises(error):
        memory.remember(key, value, ttl=ttl)
    assert memory.kept() == {}


def test_working_memory_is_saved_with_the_state_and_expired_entries_dropped(project, clock):
    """The state file's memory holds each entry and its expiry; expired ones go when saved."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"remember": {"short": 1}, "ttl": "10m"})
    project.run("memo", clock=clock, overrides={"remember": {"long": [1, "two"]}, "ttl": "1d"})
    memory = project.state("memo")["memory"]
    assert memory == {
        "short": {"value": 1, "expires_at": "2026-11-22T12:10:00Z"},
        "long": {"value": [1, "two"], "expires_at": "2026-11-23T12:00:00Z"},
    }
    clock.advance(minutes=10)
    outcome = project.run("memo", clock=clock, overrides={"recall": ["short", "long"]})
    assert outcome.exit_code == 0
    assert project.events("memo")[-1]["result"]["recalled"] == {"short": None, "long": [1, "two"]}
    assert list(project.state("memo")["memory"]) == ["long"]


def test_expired_entries_are_dropped_by_any_save_even_of_a_run_that_never_touched_memory(
    project, clock
):
    """Saving the state drops what expired, whether or not the run used ctx.memory."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"remember": {"k": 1}, "ttl": "1m"})
    clock.advance(minutes=2)
    project.run("memo", clock=clock)
    assert project.state("memo")["memory"] == {}


def test_a_state_file_without_memory_loads_and_a_bad_entry_is_refused():
    """Older state files have no memory (empty); an entry holding NaN does not validate."""
    assert AgentState.model_validate({"schema_version": 2, "agent": "a"}).memory == {}
    bad = {"schema_version": 2, "agent": "a", "memory": {"k": {"value": float("nan")}}}
    with pytest.raises(ValueError, match=r"finite|NaN"):
        AgentState.model_validate(bad)
    entry = Remembered(value=1, expires_at=T0)
    assert entry.expired(T0)
    assert not entry.expired(T0 - timedelta(seconds=1))


# -- the run's transaction ---------------------------------------------------------------

FLAKY = agent_source(
    """
    marker = ctx.home / "attempts"
    attempt = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempt))
    before = ctx.memory.recall("k")
    found = [n.text for n in ctx.memory.relevant("attempt")]
    ctx.memory.remember("k", f"attempt {attempt}")
    ctx.memory.note(f"noted by attempt {attempt}")
    if attempt == 1:
        raise TransientError("try again")
    return Result(attempt=attempt, before=before, found=found)
    """,
    result="""
    attempt: int
    before: object
    found: list[str]
    """,
    imports="from agentops import Context, TransientError",
)


def test_a_retry_attempt_starts_from_the_memory_the_run_loaded(project, clock):
    """What a failed attempt remembered or noted is gone: the retry sees neither."""
    project.add_agent("memo", FLAKY)
    outcome = project.run("memo", clock=clock, sleep=lambda _s: None)
    assert outcome.exit_code == 0, outcome.message
    result = project.events("memo")[-1]["result"]
    assert result["attempt"] == 2
    assert result["before"] is None  # attempt 1's remember() did not carry over
    assert result["found"] == []  # nor did its note
    assert stored_notes(project) == ["noted by attempt 2"]
    assert project.state("memo")["memory"]["k"]["value"] == "attempt 2"


OUTCOMES = MEMO.replace("    k: int = 5\n", "    k: int = 5\n    outcome: str = 'ok'\n").replace(
    "    return Result(recalled=recalled, found=found)",
    """    if params.outcome == "fail":
        raise RuntimeError("it broke")
    if params.outcome == "model":
        return {"recalled": "not a dict", "found": found}
    return Result(recalled=recalled, found=found)

def validate(result, ctx):
    if ctx.params.outcome == "validate":
        raise ValueError("not good enough")""",
)


@pytest.mark.parametrize("how", ["model", "validate", "fail", "dry_run"])
def test_a_run_that_is_not_kept_keeps_no_memory_and_writes_no_notes(project, clock, how):
    """A rejected output (Result model or validate()), a failed run, a dry run: nothing kept."""
    project.add_agent("memo", OUTCOMES)
    seed = project.run("memo", clock=clock, overrides={"remember": {"k": 1}, "note": ["kept"]})
    assert seed.exit_code == 0
    files = {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k}
    overrides = {"remember": {"k": 2}, "note": ["discarded"], "search": "kept discarded"}
    outcome = project.run(
        "memo",
        clock=clock,
        overrides={**overrides, "outcome": "ok" if how == "dry_run" else how},
        dry_run=how == "dry_run",
    )
    assert outcome.exit_code == {"model": 65, "validate": 65, "fail": 1, "dry_run": 0}[how]
    assert {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k} == files
    assert stored_notes(project) == ["kept"]
    assert project.state("memo")["memory"]["k"]["value"] == 1
    assert project.state("memo")["metrics"]["notes"] == 1
    if how == "dry_run":  # it saw its own note all the same
        assert project.events("memo")[-1]["result"]["found"] == ["discarded", "kept"]


# An agent that calls every public method of ctx.memory (whatever dir() shows, so a
# method added later is called too), records how each call went, then fails.
EVERY_METHOD = """
import json
from pydantic import BaseModel
from agentops import Context

ARGS = {
    "remember": ("k", 2),
    "note": ("discarded",),
    "recall": ("k",),
    "forget": ("other",),
    "relevant": ("kept discarded",),
}

class Params(BaseModel):
    pass

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    called = {}
    for name in sorted(name for name in dir(ctx.memory) if not name.startswith("_")):
        # Something to keep before each call: a method that kept anything would keep it.
        ctx.memory.remember("k", 2)
        ctx.memory.note("discarded")
        try:
            getattr(ctx.memory, name)(*ARGS.get(name, ()))
        except Exception as exc:
            called[name] = f"{type(exc).__name__}: {exc}"
        else:
            called[name] = "called"
    (ctx.home / "called.json").write_text(json.dumps(called))
    raise RuntimeError("the run fails after touching every method of ctx.memory")
"""


def test_a_run_that_calls_every_public_method_of_memory_then_raises_keeps_nothing(project, clock):
    """Whatever an agent calls on ctx.memory, a failed run keeps no note and no working memory."""
    project.add_agent("memo", MEMO)
    seed = project.run("memo", clock=clock, overrides={"remember": {"k": 1}, "note": ["kept"]})
    assert seed.exit_code == 0
    files = {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k}
    project.add_agent("memo", EVERY_METHOD)
    outcome = project.run("memo", clock=clock)
    assert (outcome.status, outcome.exit_code) == ("failed", 1), outcome.message
    assert {k: v for k, v in project.snapshot().items() if ".memory.sqlite" in k} == files
    assert stored_notes(project) == ["kept"]
    assert project.state("memo")["memory"] == {"k": {"value": 1, "expires_at": None}}
    assert project.state("memo")["metrics"]["notes"] == 1
    called = json.loads((project.home / "called.json").read_text())
    assert set(called) >= {"remember", "recall", "forget", "note", "relevant"}
    assert all(how == "called" for how in called.values()), f"give ARGS for: {called}"


def test_relevant_sees_the_notes_this_attempt_made_ranked_with_the_stored_ones(project, clock):
    """Read your writes: a note made in this run is found at once, as it will be found later."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"note": ["disk full on db-1"], "importance": 2})
    clock.advance(minutes=5)
    project.run(
        "memo",
        clock=clock,
        overrides={"note": ["disk latency on db-2"], "importance": 9, "search": "disk"},
    )
    assert project.events("memo")[-1]["result"]["found"] == [
        "disk latency on db-2",
        "disk full on db-1",
    ]
    clock.advance(minutes=5)
    project.run("memo", clock=clock, overrides={"search": "disk"})
    assert project.events("memo")[-1]["result"]["found"] == [
        "disk latency on db-2",
        "disk full on db-1",
    ]


def test_notes_are_written_after_the_state_and_counted(project, clock):
    """memory.saved follows the state's save; metrics.notes counts the notes kept."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"note": ["one", "two"]})
    project.run("memo", clock=clock, overrides={"note": ["three"]})
    project.run("memo", clock=clock)
    assert stored_notes(project) == ["one", "two", "three"]
    assert project.state("memo")["metrics"]["notes"] == 3
    saved = [e for e in project.events("memo") if e["event"] == "memory.saved"]
    assert [(e["notes"], e["dropped"]) for e in saved] == [(2, 0), (1, 0)]


def test_the_weights_of_agent_toml_rank_a_runs_notes(project, clock):
    """[memory] in agent.toml changes what relevant() puts first."""
    project.add_agent("memo", MEMO)
    project.run("memo", clock=clock, overrides={"note": ["old disk note"], "importance": 10})
    clock.advance(days=3)
    project.run("memo", clock=clock, overrides={"note": ["new disk note"], "importance": 1})
    for toml, first in [
        ("[memory]\nrecency_weight = 0\n", "old disk note"),
        ("[memory]\nimportance_weight = 0\n", "new disk note"),
    ]:
        project.add_agent("memo", MEMO, toml)
        project.run("memo", clock=clock, overrides={"search": "disk"})
        assert project.events("memo")[-1]["result"]["found"][0] == first


# -- bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "non-empty"),
        ({"text": 5}, "non-empty"),
        ({"text": "x" * 100_001}, "at most"),
        ({"importance": 0}, "1 to 10"),
        ({"importance": 11}, "1 to 10"),
        ({"importance": True}, "1 to 10"),
        ({"importance": 5.0}, "1 to 10"),
        ({"tags": "ops"}, "tags"),
        ({"tags": ["ops", ""]}, "tags"),
        ({"tags": ["t"] * 51}, "tags"),
    ],
)
def test_note_refuses_bad_notes(tmp_path, clock, kwargs, message):
    """Text, tags and importance (an int from 1 to 10) are checked when noted."""
    memory = run_memory(tmp_path, clock)
    with pytest.raises(ValueError, match=message):
        memory.note(**({"text": "fine"} | kwargs))
    assert memory.pending == 0


def test_an_agent_cannot_swallow_an_unreadable_notes_file(project, clock):
    """relevant() failing on the file ends the run (74) even inside except Exception."""
    code = MEMO.replace(
        "        found = [n.text for n in ctx.memory.relevant(params.search, k=params.k)]",
        "        try:\n            ctx.memory.relevant(params.search)\n        except Exception:\n"
        "            pass",
    )
    project.add_agent("memo", code)
    memory_path(project).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    memory_path(project).write_bytes(b"garbage" * 1000)
    outcome = project.run("memo", clock=clock, overrides={"search": "x"})
    assert outcome.exit_code == 74
    assert project.state("memo")["last_run"]["status"] == "failed"


@pytest.mark.usefixtures("no_fts5")
def test_a_run_that_notes_without_fts5_saves_its_state_and_says_so(project, clock):
    """The notes cannot be written: one line, 78, memory.save_failed; the run's state is kept."""
    project.add_agent("memo", MEMO)
    outcome = project.run("memo", clock=clock, overrides={"note": ["x"], "remember": {"k": 1}})
    assert outcome.exit_code == 78
    assert "FTS5" in outcome.message
    assert project.state("memo")["last_run"]["status"] == "succeeded"
    assert project.state("memo")["memory"]["k"]["value"] == 1
    assert "memory.save_failed" in project.event_names("memo")
    assert not memory_path(project).exists()


def test_secrets_in_notes_and_working_memory_never_reach_the_disk(project, clock):
    """Note text and tags, memory keys and values are redacted before they are written."""
    project.add_agent("memo", MEMO)
    secret = FAKE_SECRETS["FAKE_SERVICE_API_KEY"]
    token = FAKE_SECRETS["FAKE_GITHUB_TOKEN"]
    outcome = project.run(
        "memo",
        clock=clock,
        overrides={
            "note": [f"the key is {secret} and sk-{'a1' * 15}", f"token={token}"],
            "tags": [token],
            "remember": {token: secret, "api_key": "plain-looking-value", "safe": f"x {secret}"},
            "search": "key",
        },
    )
    assert outcome.exit_code == 0
    assert scan_tree(project.home) == []
    texts = stored_notes(project)
    assert texts[0].startswith("the key is [REDACTED]")
    assert "[REDACTED]" in texts[1]
    memory = project.state("memo")["memory"]
    assert memory["api_key"]["value"] == "[REDACTED]"
    assert memory["safe"]["value"] == "x [REDACTED]"
    assert [k for k in memory if k.startswith("[REDACTED:")]  # a digest in place of the token


def test_working_memory_alone_never_imports_sqlite(project, run_agentops):
    """A run that only remembers and recalls pays nothing for SQLite (cron pays every import)."""
    project.add_agent(
        "lean",
        agent_source(
            """
            n = (ctx.memory.recall("n") or 0) + 1
            ctx.memory.remember("n", n, ttl="1h")
            ctx.memory.note("a note") if n > 1 else None
            return Result(sqlite="sqlite3" in sys.modules, n=n)
            """,
            result="""
            sqlite: bool
            n: int
            """,
            imports="import sys",
        ),
    )
    assert run_agentops("run", "lean").returncode == 0
    assert run_agentops("run", "lean").returncode == 0  # notes, but never searched
    results = [e["result"] for e in project.events("lean") if e["event"] == "run.finished"]
    assert results == [{"sqlite": False, "n": 1}, {"sqlite": False, "n": 2}]
    assert stored_notes(project, "lean") == ["a note"]
    code = (
        "import agentops.run.runner, sys; "
        "print('agentops.memory.run' in sys.modules, 'sqlite3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False False"


# -- across runs ---------------------------------------------------------------------------


def test_memory_expires_and_notes_rank_across_runs(project, clock, invoke):
    """Run after run: a ttl passes between runs; notes rank by the weights in agent.toml.

    The runs start at the real time, on a fake clock that moves two seconds
    past the short ttl, because ``agentops memory`` reads by the real clock.
    """
    project.add_agent("memo", MEMO)
    clock.now = datetime.now(UTC)

    def run(**params):
        done = project.run("memo", clock=clock, overrides=params)
        assert done.exit_code == 0, done.message
        return [e for e in project.events("memo") if e["event"] == "run.finished"][-1]["result"]

    run(remember={"short": 1}, ttl=1)
    run(remember={"long": 2}, ttl="1h")
    run(note=["old disk note"], importance=10)
    clock.advance(seconds=1)
    run(note=["new disk note"], importance=1)
    clock.advance(seconds=2)  # past the short ttl
    result = run(recall=["short", "long"], search="disk")
    assert result["recalled"] == {"short": None, "long": 2}
    assert result["found"] == ["old disk note", "new disk note"]  # importance decides
    project.add_agent("memo", MEMO, '[memory]\nimportance_weight = 0\nrecency_half_life = "1s"\n')
    assert run(search="disk")["found"] == ["new disk note", "old disk note"]
    done = invoke("memory", "memo", "--json", "--search", "disk", "--limit", "1")
    assert done.exit_code == 0, done.stderr
    shown = json.loads(done.stdout)
    assert [n["text"] for n in shown["notes"]] == ["new disk note"]
    assert shown["notes_total"] == 2
    assert [e["key"] for e in shown["working"]] == ["long"]
