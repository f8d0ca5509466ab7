"""A notes database or a reply cache with flipped bytes: one line, or done without; never 70.

Both are read through :mod:`agentops._infra.sqlite`, which turns SQLite's
errors, text that is no longer UTF-8 (flipped bytes make ``sqlite3`` raise
``UnicodeDecodeError``, even from inside its own error messages) and I/O
errors into one failure. Hypothesis flips 64 bytes anywhere in a real file,
then ``agentops memory`` (and ``--json``), a run that searches and notes,
and ``agentops report`` are asked about it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops._infra.fs import FileSystem
from agentops.llm.cache import ReplyCache
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from fakellm import FakeLLM, reply
from suite import Project

MEMO = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    note: list[str] = []
    search: str | None = None

class Result(BaseModel):
    found: list[str]

def run(params: Params, ctx: Context) -> Result:
    for text in params.note:
        ctx.memory.note(text, tags=["t"], importance=5)
    found = []
    if params.search is not None:
        found = [n.text for n in ctx.memory.relevant(params.search, k=5)]
    return Result(found=found)
"""

FLIPS = st.lists(
    st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(1, 255)),
    min_size=64,
    max_size=64,
)
"""64 bytes anywhere in a file (a fraction of its size), each XORed with a non-zero mask."""


def flipped(data: bytes, flips: list[tuple[float, int]]) -> bytes:
    damaged = bytearray(data)
    for where, mask in flips:
        damaged[int(where * len(damaged))] ^= mask
    return bytes(damaged)


def run(home: Path, name: str, **overrides):
    return run_agent(AgentopsProject(home), name, overrides=overrides, environ={})


@pytest.fixture(scope="module")
def noted(tmp_path_factory) -> Path:
    """A home whose agent has made notes (copied afresh for every example)."""
    home = tmp_path_factory.mktemp("noted") / "home"
    Project(home).add_agent("memo", MEMO)
    texts = [f"note {i}: the quick brown fox jumps over the lazy dog {i}" for i in range(60)]
    for start in range(0, 60, 20):
        assert run(home, "memo", note=texts[start : start + 20]).exit_code == 0
    return home


def one_line_or_nothing(result, *, allowed: tuple[int, ...]) -> None:
    assert result.exit_code in allowed, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) <= 1, result.stderr


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(flips=FLIPS)
def test_notes_with_flipped_bytes_are_one_line_for_memory_run_and_report(
    noted, tmp_path, invoke_in, flips
):
    """memory, memory --json, a run that searches and notes, report: 0 or 74 in one line."""
    home = tmp_path / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(noted, home)
    notes = home / "state" / "memo.memory.sqlite"
    notes.write_bytes(flipped(notes.read_bytes(), flips))

    for args in (("memory", "memo"), ("memory", "memo", "--json"), ("report",)):
        one_line_or_nothing(
            invoke_in(home, *args), allowed=(0, 74) if args[0] == "memory" else (0,)
        )
    for overrides in ({"search": "quick fox"}, {"note": ["one more"]}):
        outcome = run(home, "memo", **overrides)
        assert outcome.exit_code in (0, 74), outcome.message
        assert "\n" not in outcome.message
        assert "internal error" not in outcome.message


def cache_with_replies(path: Path) -> None:
    cache = ReplyCache(FileSystem(), path, ttl_s=3600, max_entries=1000)
    for i in range(200):
        cache.put(f"key-{i}", {"text": f"reply {i} " * 10, "model": "small"}, 1000.0)
    cache.close()


@settings(max_examples=40, deadline=None)
@given(flips=FLIPS)
def test_a_reply_cache_with_flipped_bytes_is_started_afresh_or_done_without(flips):
    """Every get and put answers (a reply, a miss); a damaged file is replaced or set aside."""
    with tempfile.TemporaryDirectory() as directory:  # one per example
        path = Path(directory) / "a.llm-cache.sqlite"
        cache_with_replies(path)
        path.write_bytes(flipped(path.read_bytes(), flips))
        cache = ReplyCache(FileSystem(), path, ttl_s=3600, max_entries=1000)
        for i in range(0, 200, 7):
            found = cache.get(f"key-{i}", 1000.0)
            assert found is None or isinstance(found, dict)
        cache.put("new", {"text": "fresh"}, 1000.0)
        assert cache.get("new", 1000.0) in (None, {"text": "fresh"})
        cache.close()


LLM_AGENT = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    prompt: str = "hello"

class Result(BaseModel):
    text: str
    cached: bool

def run(params: Params, ctx: Context) -> Result:
    answer = ctx.llm.complete(params.prompt)
    return Result(text=answer.text, cached=answer.cached)
"""


def test_a_run_with_a_damaged_reply_cache_asks_the_model_and_report_reads_on(project, invoke):
    """Flipped bytes all over the cache: the run succeeds, asks the model once, report is 0."""
    with FakeLLM() as server:
        server.script(reply("fresh"), reply("fresh again"))
        (project.home / "agentops.toml").write_text(
            f'[providers.fake]\nbase_url = "{server.base_url}"\napi_key_env = "FAKE_OPENAI_KEY"\n\n'
            '[models.small]\nprovider = "fake"\nname = "small"\n'
        )
        project.add_agent("asker", LLM_AGENT, '[llm]\nmodel = "small"\ncache = "1h"\n')
        assert run(project.home, "asker").exit_code == 0
        path = project.home / "state" / "asker.llm-cache.sqlite"
        data = path.read_bytes()
        path.write_bytes(flipped(data, [(i / 64, 0xFF) for i in range(64)]))
        outcome = run(project.home, "asker", prompt="hello")
        assert outcome.exit_code == 0, outcome.message
        assert len(server.requests) == 2, "the damaged cache answered nothing: the model did"
    said = [e["event"] for e in project.events("asker")]
    assert "llm.cache_reset" in said or "llm.cache_unavailable" in said
    one_line_or_nothing(invoke("report"), allowed=(0,))
    one_line_or_nothing(invoke("memory", "asker"), allowed=(0,))


@pytest.fixture
def invoke_in():
    """The click app in-process against a given home (a new one per hypothesis example)."""
    from click.testing import CliRunner  # noqa: PLC0415

    from agentops.cli import main  # noqa: PLC0415
    from suite import remember  # noqa: PLC0415

    def invoke(home: Path, *args: str):
        result = CliRunner().invoke(main, ["--home", str(home), *args])
        remember(f"agentops {' '.join(args)} (in-process)", result.stdout, result.stderr)
        return result

    return invoke


def test_a_notes_schema_that_is_not_utf8_is_74_in_one_line(noted, tmp_path, invoke_in):
    """The case found by fuzzing: a table's name in sqlite_master no longer UTF-8."""
    home = tmp_path / "home"
    shutil.copytree(noted, home)
    notes = home / "state" / "memo.memory.sqlite"
    data = bytearray(notes.read_bytes())
    where = data.index(b"tablenotesnotes")
    data[where + len(b"table")] = 0xFF
    notes.write_bytes(bytes(data))
    for args in (("memory", "memo"), ("memory", "memo", "--json")):
        result = invoke_in(home, *args)
        assert result.exit_code == 74
        assert result.stderr.count("\n") == 1
        assert "text that is not UTF-8" in result.stderr
    outcome = run(home, "memo", search="fox")
    assert outcome.exit_code == 74
    assert "unreadable notes (text that is not UTF-8" in outcome.message
    assert notes.read_bytes() == bytes(data), "left as it is"
    assert invoke_in(home, "report").exit_code == 0
