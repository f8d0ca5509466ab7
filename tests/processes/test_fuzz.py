"""Fuzzing every input agentops reads, with Hypothesis (issue 8, "Hardening").

agent.toml, ``-p`` and ``--params-json``, state files, journals, agent names
and ``Retry-After`` values are generated at random, cut short, nested deeply,
filled with NaN, 1e400 and years like 9999. Each either works, or exits with
its documented code (2, 65, 74 or 78) and exactly one line on stderr starting
``agentops:``; never 70 (a bug), never a traceback, and a state, ledger or
journal file that was readable before is byte-for-byte unchanged when a run
refuses it. Whatever a run accepts, it saves in a form the next run reads.

Hypothesis and function-scoped fixtures do not mix, so every property builds
its own home in a temporary directory. Runs go in-process (the click app
through ``CliRunner``, or ``run_agent``) on a file system that skips fsync:
the bytes are what is tested here, not their durability (``test_process.py``
kills real processes).

Each bug the properties found is pinned by a test of its own, beside the
property that found it.

Example counts are modest, so the module runs in about a minute on a busy
two-core machine; ``AGENTOPS_FUZZ_SCALE=40`` multiplies them for a long hunt.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from agentops.cli import main
from agentops.errors import StateError
from agentops.guards.failure import parse_retry_after
from agentops.model.journal import parse_lines, written
from agentops.model.status import RunStatus
from agentops.project.home import Project
from agentops.run.runner import run_agent
from agentops.store.file import FileStore
from faults import FaultyFileSystem
from suite import AGENTOPS, HELLO, FakeClock, agent_source, cron_env

SCALE = int(os.environ.get("AGENTOPS_FUZZ_SCALE", "1"))
"""Multiplies every example count: ``AGENTOPS_FUZZ_SCALE=40`` for a long hunt."""

FUZZ = settings(
    deadline=None,
    max_examples=50 * SCALE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Modest: the module should run in about a minute on a busy two-core machine."""

CHEAP = settings(FUZZ, max_examples=150 * SCALE)
"""For properties of pure functions, which cost microseconds an example."""

DOCUMENTED = {0, 1, 2, 65, 74, 75, 78}
"""Every exit code the README documents except 70, which is for bugs only."""

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - a tmpfs
"""Where homes are made: in memory when the machine has a tmpfs, since a fuzzer writes,
renames and removes tens of thousands of small files, and on a virtual disk each costs
a millisecond. Every home is removed when its example ends."""


def no_sync() -> FaultyFileSystem:
    """The real file system without fsync: these tests check bytes, not durability."""
    return FaultyFileSystem(power_cuts=False)


def full_disk() -> FaultyFileSystem:
    """No room to save the ledger (then the state): the run's journal stays behind."""
    return FaultyFileSystem("open", where="*/a.ledger.json", error=errno.ENOSPC, power_cuts=False)


# -- homes, agents and invocations -----------------------------------------------------


@contextlib.contextmanager
def scratch_home(**agents: str | tuple[str, str]):
    """A fresh home with ``agents`` (name -> code, or (code, toml)), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="agentops-fuzz-", dir=SCRATCH) as tmp:
        home = Path(tmp) / "home"
        (home / "agents").mkdir(parents=True)
        for name, spec in agents.items():
            code, toml = spec if isinstance(spec, tuple) else (spec, "")
            write_agent(home, name, code, toml)
        yield home


def write_agent(home: Path, name: str, code: str, toml: str | bytes = "") -> None:
    """agents/<name>/agent.py and agent.toml (text, or raw bytes)."""
    directory = home / "agents" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "agent.py").write_text(textwrap.dedent(code))
    path = directory / "agent.toml"
    if isinstance(toml, bytes):
        path.write_bytes(toml)
    else:
        path.write_text(toml)


def cli(home: Path, *args: str):
    """Run the click app in-process, as cron would (stdout is not a terminal)."""
    return CliRunner().invoke(main, ["--home", str(home), *args])


def run(home: Path, name: str = "a", **kwargs: Any):
    """``run_agent`` in-process, with a fixed clock and no fsync."""
    kwargs.setdefault("clock", FakeClock(T0))
    kwargs.setdefault("fs", no_sync())
    return run_agent(Project(home), name, environ={}, **kwargs)


def assert_clean(result, codes: set[int], *, quiet: set[int] = frozenset({0})) -> None:
    """Exit with one of ``codes`` (never 70); one ``agentops:`` line unless quiet; no traceback."""
    stderr = result.stderr
    assert result.exit_code in codes, (result.exit_code, stderr, result.stdout)
    assert result.exit_code != 70, stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in stderr
    assert "Traceback" not in result.stdout
    lines = stderr.splitlines()
    if result.exit_code in quiet:
        assert len(lines) <= 1, stderr
    else:
        assert len(lines) == 1, stderr
    assert all(line.startswith("agentops: ") for line in lines), stderr


def note_exit(code: int) -> None:
    """Count exit codes in Hypothesis' statistics (``--hypothesis-show-statistics``)."""
    with contextlib.suppress(InvalidArgument):  # not inside a property
        event(f"run exits {code}")


def snapshot(home: Path) -> dict[str, bytes]:
    """The bytes of every state, ledger and journal file (and their backups)."""
    state = home / "state"
    if not state.exists():
        return {}
    return {
        p.name: p.read_bytes()
        for p in sorted(state.iterdir())
        if p.is_file() and (".json" in p.name or p.name.endswith(".journal"))
        if not p.name.endswith((".attempt.json", ".tmp"))
    }


def json_depth(value: Any) -> int:
    """How many containers pydantic-core descends into to read ``value`` (its depth limit).

    A scalar is 0, and so is an empty container: ``[[]]`` is 1, ``[[1]]`` is 2.
    """
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    return max((1 + json_depth(child) for child in children), default=0)


def nested(depth: int, *, kind: str = "list", leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` lists or single-key dicts."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


# Raw JSON text that Python's json module cannot produce from a value.
_RAW = {"@1e400@": "1e400", "@-1e400@": "-1e400", "@10**400@": "1" + "0" * 400}


def dumps(document: Any) -> bytes:
    """JSON as a hand or a bug might write it: NaN, Infinity, 1e400 and 400-digit ints too."""
    text = json.dumps(document, allow_nan=True, ensure_ascii=False)
    for marker, raw in _RAW.items():
        text = text.replace(json.dumps(marker), raw)
    return text.encode("utf-8", "surrogatepass")


# -- strategies shared by several inputs -----------------------------------------------

odd_numbers = st.one_of(
    st.integers(),
    st.floats(),  # NaN, infinities, -0.0, subnormals
    st.sampled_from([10**400, -(10**400), 10**19, 2**63, 1e308, 5e-324, *_RAW]),
)
# Digits Python's str.isdigit() takes and int() may not: Arabic-Indic, superscript,
# full-width, NKo, mathematical bold, Bengali.
unicode_digits = st.sampled_from(
    ["\u0663", "\u00b9", "\uff11", "\u07c3", "\U0001d7d7", "\u09ea"]
).map(lambda d: d * 2)
odd_scalars = st.one_of(
    odd_numbers,
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    unicode_digits,
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Small lists and dicts of ``inner``."""
    return st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    )


odd_values = st.recursive(odd_scalars, containers, max_leaves=8)


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``valid`` values, sometimes anything at all."""
    return st.one_of(valid, valid, odd_values)


# -- agent.toml ------------------------------------------------------------------------


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes, plus DEL, which TOML wants escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (inline tables and arrays for containers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return toml_number(value)
    if isinstance(value, str):
        return _RAW.get(value) or toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return toml_string(str(value))


def toml_number(value: float) -> str:
    """A TOML integer or float, ``nan`` and ``inf`` included."""
    if isinstance(value, int) or math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def toml_document(document: dict[str, Any]) -> str:
    """A TOML document: top-level keys first, then one ``[table]`` per top-level dict."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items() if not _table(v)]
    for key, table in document.items():
        if _table(table):
            lines.append(f"[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _table(value: Any) -> bool:
    return isinstance(value, dict)


durations = st.one_of(
    st.from_regex(r"\A([0-9]{1,3}(\.[0-9])?(ms|s|m|h|d|w)){1,2}\Z"),
    st.integers(min_value=-5, max_value=10**9),
    st.floats(min_value=-1.0, max_value=1e9),
    st.sampled_from(["0s", "1_000s", "5 m", "1e3s", "٣s", "10y", "", "inf", "9" * 400 + "s"]),
)
rates = st.one_of(
    st.builds(
        "{}/{}".format,
        st.one_of(st.integers(min_value=0, max_value=10**6), st.just(10**40), unicode_digits),
        st.sampled_from(["hour", "minute", "day", "s", "15m", "0s", "week", "year", "1e3s"]),
    ),
    st.text(max_size=8),
)
schedules = st.one_of(
    st.sampled_from(
        [
            "@daily",
            "@hourly",
            "@reboot",
            "@weekly",
            "@Daily",
            "@every_minute",
            "*/10 * * * *",
            "0 0 30 2 *",
            "0 0 29 2 1",
            "*/0 * * * *",
            "0 0 L * *",
            "0 0 * * 1#2",
            "61 * * * *",
            "0 0 1 1 * 2026",
            "0 24 * * *",
            "0 0 * jan-dec mon-fri",
            "99999999999999999999 * * * *",
        ]
    ),
    st.lists(
        st.sampled_from(["*", "0", "1", "*/5", "1-3", "7", "13", "32", "jan", "sun", "a"]),
        min_size=4,
        max_size=6,
    ).map(" ".join),
)
fractions = st.one_of(st.floats(min_value=0, max_value=1), st.floats())
counts = st.one_of(st.integers(min_value=0, max_value=1000), st.integers())
strings = st.text(max_size=10)

SECTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "limits": {
        "runs": rates,
        "cost_usd_per_hour": fractions,
        "cost_usd_per_day": fractions,
        "tokens_per_run": counts,
        "requests_per_minute": counts,
        "steps_per_run": counts,
        "actions": st.dictionaries(strings, either(rates), max_size=2),
    },
    "retry": {
        "attempts": st.integers(min_value=-1, max_value=120),
        "initial": durations,
        "max": durations,
    },
    "circuit": {"failures": counts, "cooldown": durations},
    "ledger": {"keep": durations},
    "guard": {
        "auto_threshold": fractions,
        "review_threshold": fractions,
        "pii": st.sampled_from(["redact", "reject", "off", "REDACT"]),
    },
    "permissions": {"actions": st.lists(strings, max_size=2), "hosts": st.lists(strings)},
    "llm": {
        "model": strings,
        "max_tokens": counts,
        "temperature": fractions,
        "cache": durations,
        "timeout": durations,
        "log_bodies": st.booleans(),
    },
    "memory": {"keep_notes": counts, "recency_half_life": durations},
}
TOP: dict[str, st.SearchStrategy[Any]] = {
    "description": strings,
    "schedule": schedules,
    "timeout": durations,
    "grace": durations,
    "params": st.dictionaries(st.sampled_from(["name", "nmae", "x"]), odd_values, max_size=2),
}


@st.composite
def agent_tomls(draw) -> str:
    """An agent.toml built from the real keys, with values of every type and size."""
    document: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([*TOP, *SECTIONS]), unique=True, max_size=5)):
        if key in TOP:
            document[key] = draw(either(TOP[key]))
        else:
            fields = SECTIONS[key]
            chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=3))
            document[key] = {field: draw(either(fields[field])) for field in chosen}
    if draw(st.integers(0, 9)) == 0:  # a typo somewhere
        document[draw(st.sampled_from(["timout", "extra"]))] = draw(odd_scalars)
    return toml_document(document)


def check_toml_everywhere(home: Path) -> None:
    """``run``, ``list`` and ``cron`` each work or refuse the agent.toml in one line."""
    result = cli(home, "run", "a")
    note_exit(result.exit_code)
    codes = {0, 1, 65, 75, 78}
    if "cannot connect to the store" in result.stderr:  # a [store] url that leads nowhere
        codes.add(74)
    assert_clean(result, codes, quiet={0, 75})
    assert_clean(cli(home, "list"), {0, 78})
    assert_clean(cli(home, "cron"), {0, 78})


@FUZZ
@given(toml=agent_tomls())
@example(toml="timeout = true\n[retry]\nattempts = inf\n")
@example(toml='[limits]\nruns = "٣/hour"\ntokens_per_run = ' + "9" * 400 + "\n")
@example(toml='timeout = -5\n[circuit]\ncooldown = "0s"\n')
def test_any_agent_toml_works_or_is_refused_in_one_line(toml):
    """agent.toml from the real keys with random values: run, list, cron work or exit 78."""
    with scratch_home(a=(HELLO, toml)) as home:
        check_toml_everywhere(home)


@FUZZ
@given(raw=st.binary(max_size=200))
@example(raw=b"\xef\xbb\xbftimeout = '5m'\n")
@example(raw=b"\xff\xfe\x00t")
@example(raw=b'description = "\x00"\n')
def test_random_bytes_as_agent_toml_are_refused_in_one_line(raw):
    """Random bytes as agent.toml: run, list and cron work or exit 78, in one line."""
    with scratch_home() as home:
        write_agent(home, "a", HELLO, raw)
        check_toml_everywhere(home)


@pytest.mark.parametrize("schedule", ["* * * 1 *", "* * * * *"])
def test_a_keep_shorter_than_a_minute_is_checked_against_the_schedule(schedule):
    """`keep = "30s"` is shorter than any cron schedule's gap: refused (78), like `keep = "1h"`."""
    toml = f'schedule = "{schedule}"\n[ledger]\nkeep = "30s"\n'
    with scratch_home(a=(HELLO, toml)) as home:
        assert_clean(cli(home, "list"), {78})


@st.composite
def project_tomls(draw) -> str:
    """An agentops.toml: [defaults] from the agent keys, [logs], [notify], [store]."""
    defaults = {}
    for key in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=3)):
        fields = SECTIONS[key]
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=2))
        defaults[key] = {field: draw(either(fields[field])) for field in chosen}
    if draw(st.booleans()):
        defaults["timeout"] = draw(either(durations))
    document: dict[str, Any] = {"defaults": defaults}
    extras = {
        "logs": st.fixed_dictionaries(
            {},
            optional={"max_size": either(st.sampled_from(["10MB", "1KiB", "1"])), "keep": counts},
        ),
        "notify": st.fixed_dictionaries(
            {}, optional={"webhooks": st.lists(strings, max_size=1), "cooldown": durations}
        ),
        "store": st.fixed_dictionaries({}, optional={"url": either(strings)}),
    }
    for key in draw(st.lists(st.sampled_from(sorted(extras)), unique=True)):
        document[key] = draw(extras[key])
    return toml_document(document)


@FUZZ
@given(project_toml=st.one_of(project_tomls().map(str.encode), st.binary(max_size=60)))
@example(project_toml=b'[store]\nurl = "postgres://x"\n')
@example(project_toml=b"[defaults]\ntimeout = 0\n")
def test_any_agentops_toml_works_or_is_refused_in_one_line(project_toml):
    """agentops.toml from its real keys, or random bytes: run, list and cron work or exit 78."""
    with scratch_home(a=HELLO) as home:
        (home / "agentops.toml").write_bytes(project_toml)
        check_toml_everywhere(home)


ANY_PARAMS = """
from typing import Any
from pydantic import BaseModel, ConfigDict

class Params(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Any = None

class Result(BaseModel):
    ok: bool

def run(params: Params, ctx) -> Result:
    return Result(ok=True)
"""

PARAMS_SERIALIZATION_LIMIT = 252
"""Past this depth pydantic cannot serialize params into the run.started log line."""


def deep_toml(kind: str, depth: int) -> str:
    """An agent.toml nesting ``depth`` levels, in one of several places."""
    if kind == "array":
        return "x = " + "[" * depth + "]" * depth + "\n"
    if kind == "inline table":
        return "x = " + "{a = " * depth + "1" + "}" * depth + "\n"
    if kind == "dotted table":
        return "[" + ".".join(["t"] * depth) + "]\n"
    if kind == "params array":
        return "[params]\nname = " + "[" * depth + "]" * depth + "\n"
    return "[params]\nname = " + "{a = " * depth + "1" + "}" * depth + "\n"


@FUZZ
@given(
    kind=st.sampled_from(
        ["array", "inline table", "dotted table", "params array", "params inline table"]
    ),
    depth=st.one_of(st.integers(1, 600), st.integers(600, 5000)),
)
@example(kind="array", depth=5000)
@example(kind="params inline table", depth=300)
def test_deeply_nested_agent_toml_works_or_is_refused_in_one_line(kind, depth):
    """Arrays, inline tables and table headers nested deeply: never 70, one line."""
    with scratch_home(a=(ANY_PARAMS, deep_toml(kind, depth))) as home:
        check_toml_everywhere(home)


@pytest.mark.parametrize("depth", [254, 300])
def test_params_nested_past_serialization_are_refused(depth):
    """A [params] value nested 254 or 300 deep is refused in one line, not 70."""
    with scratch_home(a=(ANY_PARAMS, deep_toml("params array", depth))) as home:
        assert_clean(cli(home, "run", "a"), {65, 78})


# -- -p KEY=VALUE and --params-json ----------------------------------------------------

TYPED = agent_source(
    """
    ctx.state["params"] = params.model_dump(mode="json")
    return Result(ok=True)
    """,
    params="""
    f: float = 0.0
    i: int = 0
    s: str = ""
    b: bool = False
    d: dict = {}
    l: list = []
    """,
    result="ok: bool",
)

FIELDS = ["f", "i", "s", "b", "d", "l"]

# What undecodable bytes in argv become (surrogateescape): a lone surrogate.
argv_characters = st.one_of(
    st.characters(), st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
)
argv_text = st.text(argv_characters, max_size=12)
param_keys = st.one_of(st.sampled_from(FIELDS), argv_text)
param_values = st.one_of(
    argv_text,
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "9" * 400, "9" * 5000, "-0"]),
    unicode_digits,
    odd_numbers.map(str),
)
param_pairs = st.lists(
    st.one_of(st.builds("{}={}".format, param_keys, param_values), argv_text), max_size=4
)


def check_params_then_rerun(home: Path, *args: str) -> None:
    """The run works or refuses its params in one line; what it saved, the next run reads."""
    result = cli(home, "run", "a", *args)
    note_exit(result.exit_code)
    assert_clean(result, {0, 1, 2, 65}, quiet={0})
    if (home / "state" / "a.json").exists():
        FileStore(home / "state").load("a")
        assert_clean(cli(home, "run", "a"), {0, 1, 75}, quiet={0, 75})


@FUZZ
@given(pairs=param_pairs)
@example(pairs=["f=nan", "i=" + "9" * 5000])
@example(pairs=["f=1e400", "s=\udcff"])
@example(pairs=["=x", " =y", "novalue"])
def test_any_param_pairs_work_or_are_refused_in_one_line(pairs):
    """Random -p KEY=VALUE pairs: exit 0, 1, 2 or 65 in one line; the state stays readable."""
    with scratch_home(a=TYPED) as home:
        check_params_then_rerun(home, *[arg for pair in pairs for arg in ("-p", pair)])


STATE_DEPTH_LIMIT = 200
"""The deepest JSON pydantic-core parses (:func:`json_depth`): a state file must stay within it."""


@st.composite
def params_jsons(draw) -> str:
    """--params-json: random text, JSON with NaN and 1e400, or deeply nested JSON."""
    kind = draw(st.sampled_from(["text", "object", "deep", "huge"]))
    if kind == "text":
        # Lone surrogates are left out: test_params_json_with_undecodable_bytes_is_a_usage_error.
        return draw(st.text(max_size=30))
    if kind == "object":
        value = draw(st.dictionaries(param_keys, odd_values, max_size=3))
        return dumps(draw(st.one_of(st.just(value), odd_values))).decode("utf-8", "replace")
    if kind == "huge":
        digits = draw(st.integers(300, 6000))
        return f'{{"{draw(st.sampled_from(FIELDS))}": 1{"0" * digits}}}'
    depth = draw(st.integers(1, 260))
    field = draw(st.sampled_from(["d", "l", "s"]))
    value = nested(depth, kind="dict" if field == "d" else "list", leaf=draw(odd_scalars))
    return dumps({field: value}).decode("utf-8", "replace")


@FUZZ
@given(params_json=params_jsons())
@example(params_json='{"f": NaN}')
@example(params_json='{"f": Infinity, "i": 1e400}')
@example(params_json='{"i": ' + "9" * 5000 + "}")
@example(params_json="[" * 300 + "]" * 300)
def test_any_params_json_works_or_is_refused_in_one_line(params_json):
    """Random --params-json: exit 0, 1, 2 or 65 in one line; the state stays readable."""
    with scratch_home(a=TYPED) as home:
        check_params_then_rerun(home, "--params-json", params_json)


def test_params_json_with_undecodable_bytes_is_a_usage_error():
    """--params-json with an undecodable byte (a lone surrogate in argv): 2, not 70."""
    with scratch_home(a=TYPED) as home:
        assert_clean(cli(home, "run", "a", "--params-json", "\udcff"), {2})


def test_params_as_deep_as_the_state_allows_are_saved_in_a_form_that_loads():
    """ctx.state exactly 200 deep: refused by the run, or saved so that the next run reads it."""
    value = nested(198, leaf=[])
    assert json_depth({"params": {"l": value}}) == STATE_DEPTH_LIMIT
    params_json = json.dumps({"l": value})
    with scratch_home(a=TYPED) as home:
        check_params_then_rerun(home, "--params-json", params_json)


# -- state files -----------------------------------------------------------------------

PUBLISHER = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    keys: list[str] = ["k1"]

class Result(BaseModel):
    done: int

def publish(ctx, key):
    outbox = ctx.home / "outbox"
    outbox.mkdir(exist_ok=True)
    with open(outbox / key, "a") as effect:
        effect.write("published\\n")
    return {"key": key}

def run(params: Params, ctx: Context) -> Result:
    for key in params.keys:
        ctx.spend(usd=0.01, tokens=5)
        ctx.action("publish", key=key, do=lambda key=key: publish(ctx, key))
    return Result(done=len(params.keys))

def reconcile(action, key, ctx):
    return {"key": key} if (ctx.home / "outbox" / key).exists() else False
"""
"""Spends, then publishes each key once: an effect is one line in outbox/<key>."""

STATUSES = [status.value for status in RunStatus]

in_range = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2200, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]),
)
stamps = in_range.map(datetime.isoformat)
odd_stamps = st.one_of(
    st.datetimes().map(datetime.isoformat),  # no zone, any year
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00+01:00",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "2201-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T03:10:00",
            "2026-11-22",
            "",
            "now",
        ]
    ),
    st.sampled_from([0, -1, 10**11, 1e20, *_RAW]),
)
run_ids = st.from_regex(r"\A[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}\Z")
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    containers,
    max_leaves=6,
)
ledger_lines = st.builds(
    "{} {} {} {}".format,
    in_range.map(lambda at: at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.sampled_from(["committed", "undone", "failed", "unresolved"]),
    run_ids,
    json_values.map(lambda v: json.dumps(v, separators=(",", ":"))),
)
ledger_entries = st.dictionaries(
    st.sampled_from(["publish", "notify"]),
    st.dictionaries(st.sampled_from(["k0", "k1", "k2"]), ledger_lines, max_size=2),
    max_size=2,
)


def some(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A list of up to three."""
    return st.lists(strategy, max_size=3)


valid_states = st.fixed_dictionaries(
    {"schema_version": st.just(2), "agent": st.just("a")},
    optional={
        "last_run": st.fixed_dictionaries(
            {
                "run_id": run_ids,
                "started_at": stamps,
                "finished_at": stamps,
                "status": st.sampled_from(STATUSES),
                "duration_s": st.floats(min_value=0, max_value=1e6),
            },
            optional={"error": st.none() | st.text(max_size=20), "degraded": st.booleans()},
        ),
        "last_success_at": stamps | st.none(),
        "metrics": st.dictionaries(
            st.sampled_from(["runs", "succeeded", "failed", "skipped", "stopped", "tokens"]),
            st.integers(min_value=0, max_value=10**12) | st.just(10**400),
        ),
        "errors": some(
            st.fixed_dictionaries(
                {
                    "at": stamps,
                    "run_id": run_ids,
                    "category": st.sampled_from(STATUSES),
                    "message": st.text(max_size=20),
                }
            )
        ),
        "circuit": st.fixed_dictionaries(
            {"state": st.sampled_from(["closed", "open", "half_open"])},
            optional={
                "fingerprint": st.none() | st.text(max_size=10),
                "failures": st.integers(min_value=0, max_value=5),
                "opened_at": stamps | st.none(),
                "until": stamps | st.none(),
            },
        ),
        "rate_limits": st.dictionaries(
            st.sampled_from(["runs", "action:publish", "requests"]), some(stamps), max_size=2
        ),
        "budget": st.fixed_dictionaries(
            {},
            optional={
                "spends": some(
                    st.fixed_dictionaries(
                        {"at": stamps, "run_id": run_ids},
                        optional={
                            "usd": st.floats(min_value=0, max_value=1e9),
                            "tokens": st.integers(min_value=0, max_value=10**12),
                        },
                    )
                ),
                "waiting_usd": st.floats(min_value=0, max_value=1e9),
            },
        ),
        "review": some(
            st.fixed_dictionaries(
                {
                    "id": run_ids,
                    "run_id": run_ids,
                    "at": stamps,
                    "result": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
                },
                optional={
                    "confidence": st.none() | st.floats(min_value=0, max_value=1),
                    "escalated": st.booleans(),
                },
            )
        ),
        "ledger_summary": st.fixed_dictionaries(
            {"entries": st.integers(min_value=0, max_value=10**6)},
            optional={"unresolved": some(st.tuples(st.just("publish"), st.text(max_size=4)))},
        ),
        "journal_folded": st.none() | run_ids,
        "data": st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    },
)
version_1_states = st.builds(
    lambda state, entries: {
        **{k: v for k, v in state.items() if k != "ledger_summary"},
        "schema_version": 1,
        "ledger": entries,
    },
    valid_states,
    ledger_entries,
)
ledger_files = st.fixed_dictionaries(
    {"schema_version": st.just(1), "agent": st.just("a"), "entries": ledger_entries},
    optional={"journal_folded": st.none() | run_ids},
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every place inside a JSON document, as a path of keys and indices."""
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    found = []
    for key, child in children:
        found.append((*path, key))
        found += _paths(child, (*path, key))
    return found


@st.composite
def damaged(draw, documents: st.SearchStrategy[Any], most: int = 2) -> Any:
    """A document from ``documents`` with up to ``most`` places replaced, removed or added to."""
    document = copy.deepcopy(draw(documents))
    for _ in range(draw(st.integers(0, most))):
        paths = _paths(document)
        if not paths:
            break
        *where, last = draw(st.sampled_from(paths))
        parent = document
        for key in where:
            parent = parent[key]
        how = draw(st.sampled_from(["replace", "replace", "odd stamp", "remove", "add"]))
        if how == "remove":
            del parent[last]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(odd_values)
        elif how == "odd stamp":
            parent[last] = draw(odd_stamps)
        else:
            parent[last] = draw(odd_values)
    return document


def readable(home: Path, *, ledger: bool = True) -> bool:
    """Whether the file store reads agent a's state (and its ledger): the oracle."""
    store = FileStore(home / "state")
    try:
        store.load("a")
        if ledger:
            store.load_ledger("a")
    except StateError:
        return False
    return True


def check_state_files(home: Path) -> None:
    """A run reads the files and saves what the next run reads, or exits 74 leaving them."""
    before = snapshot(home)
    expected_readable = readable(home)
    outcome = run(home)
    note_exit(outcome.exit_code)
    assert "\n" not in outcome.message
    if expected_readable:
        assert outcome.exit_code in {0, 1, 75}, outcome.message
        assert readable(home), "saved in a form the next run refuses"
        assert run(home).exit_code in {0, 1, 75}
    else:
        assert outcome.exit_code == 74, outcome.message
        assert snapshot(home) == before
    for command in (["review", "list", "a"], ["ledger", "a", "--all"]):
        assert_clean(cli(home, *command), {0, 74})


def write_state(home: Path, state: bytes, ledger: bytes | None = None) -> None:
    """state/a.json (and state/a.ledger.json) as given."""
    (home / "state").mkdir(exist_ok=True)
    (home / "state" / "a.json").write_bytes(state)
    if ledger is not None:
        (home / "state" / "a.ledger.json").write_bytes(ledger)


@FUZZ
@given(
    state=damaged(st.one_of(valid_states, valid_states, version_1_states)),
    ledger=st.none() | damaged(ledger_files, most=1).map(dumps),
)
def test_any_state_document_is_read_and_saved_or_refused_untouched(state, ledger):
    """State and ledger files from the real keys, damaged at random: read and saved, or 74."""
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, dumps(state), ledger)
        # The one family left out: a readable state beside an unreadable ledger, which
        # the run reads only when it needs it (test_an_unreadable_ledger_met_by_...).
        assume(readable(home) or not readable(home, ledger=False))
        check_state_files(home)


NAMED_DAMAGE = {
    "schema_version from the future": ({"schema_version": 3}, False),
    "schema_version 0": ({"schema_version": 0}, False),
    "schema_version as a string": ({"schema_version": "2"}, False),
    "schema_version 10**400": ({"schema_version": "@10**400@"}, False),
    "1e400 in data": ({"data": {"x": "@1e400@"}}, False),
    "NaN in data": ({"data": {"x": math.nan}}, False),
    "-Infinity in metrics": ({"metrics": {"cost_usd": -math.inf}}, False),
    "1e400 as a cost": ({"metrics": {"cost_usd": "@1e400@"}}, False),
    "10**400 runs": ({"metrics": {"runs": "@10**400@"}}, True),
    "10**400 in data": ({"data": {"x": "@10**400@"}}, True),
    "year 9999": ({"last_success_at": "9999-12-31T23:59:59Z"}, False),
    "year 1 in another zone": ({"last_success_at": "0001-01-01T00:00:00+01:00"}, False),
    "no zone": ({"last_success_at": "2026-11-22T03:10:00"}, True),
    "a list": ([], False),
    "null": (None, False),
    "another agent's state": ({"agent": "b"}, False),
    "an unknown key": ({"lats_run": None}, False),
    "data as a list": ({"data": []}, False),
    "a huge NaN spend": (
        {"budget": {"spends": [{"at": "2026-11-22T03:10:00Z", "run_id": "r", "usd": math.nan}]}},
        False,
    ),
}


@pytest.mark.parametrize(("damage", "expected_readable"), NAMED_DAMAGE.values(), ids=NAMED_DAMAGE)
def test_named_state_damage_is_read_or_refused_untouched(damage, expected_readable):
    """Each damage the issue names: 1e400, NaN, year 9999, versions 0 and 3, wrong shapes."""
    document = {"schema_version": 2, "agent": "a", **damage} if isinstance(damage, dict) else damage
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, dumps(document))
        assert readable(home) is expected_readable
        check_state_files(home)


def test_an_unreadable_ledger_met_by_an_action_fails_the_run_and_keeps_the_ledger():
    """A readable state beside an unreadable ledger: 74 in one line, the ledger as it was.

    The run failed (last_run says so: never "aborted"); what it spent first is kept.
    """
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, dumps({"schema_version": 2, "agent": "a"}), b'{"schema_version": 1}')
        before = snapshot(home)
        assert_clean(cli(home, "run", "a"), {74})
        after = snapshot(home)
        assert after["a.ledger.json"] == before["a.ledger.json"]
        state = json.loads(after["a.json"])
        assert state["last_run"]["status"] == "failed"
        assert "unreadable ledger" in state["last_run"]["error"]
        assert state["metrics"]["tokens"] == 5


def test_an_unreadable_ledger_met_by_reconcile_is_refused_in_one_line():
    """An unresolved action beside an unreadable ledger: 74, one line, the ledger untouched."""
    state = {"schema_version": 2, "agent": "a", "ledger_summary": {"unresolved": [["p", "k"]]}}
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, dumps(state), b'{"schema_version": 1}')
        before = snapshot(home)
        result = subprocess.run(
            [str(AGENTOPS), "--home", str(home), "run", "a"],
            env=cron_env(home),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in result.stderr
        assert (result.returncode, len(result.stderr.splitlines())) == (74, 1), result.stderr
        assert snapshot(home)["a.ledger.json"] == before["a.ledger.json"]


@FUZZ
@given(raw=st.binary(max_size=300))
@example(raw=b"")
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b'{"schema_version": 2, "agent": "a"}' + b"\x00")
def test_random_bytes_as_a_state_file_are_refused_untouched(raw):
    """Random bytes as state/a.json: the run exits 74 and leaves them as they were."""
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, raw)
        check_state_files(home)


def test_a_state_file_cut_at_every_byte_is_refused_untouched():
    """Every prefix of a real state file is refused (74) and left as it was; the whole is read."""
    with scratch_home(a=HELLO) as home:
        assert run(home).exit_code == 0
        path = home / "state" / "a.json"
        whole = json.dumps(json.loads(path.read_bytes()), separators=(",", ":")).encode()
        for cut in range(len(whole) + 1):
            for leftover in (home / "state").glob("a.*"):
                leftover.unlink()
            path.write_bytes(whole[:cut])
            outcome = run(home)
            if cut < len(whole):
                assert outcome.exit_code == 74, (cut, outcome.message)
                assert "\n" not in outcome.message
                assert path.read_bytes() == whole[:cut]
                assert not (home / "state" / "a.json.bak").exists()
            else:
                assert outcome.exit_code == 0, outcome.message


@FUZZ
@given(state=st.one_of(valid_states, version_1_states, damaged(valid_states, most=1)))
def test_a_readable_state_round_trips(state):
    """Whatever the store reads, it commits, and reads back equal."""
    with scratch_home(a=HELLO) as home:
        write_state(home, dumps(state))
        store = FileStore(home / "state", fs=no_sync())
        try:
            loaded = store.load("a")
        except StateError:
            return
        with store.lease("a", run_id="fuzz") as lease:
            store.commit(lease, loaded)
        note_exit(0)
        again = FileStore(home / "state").load("a")
        assert again == loaded
        assert again.model_dump_json() == loaded.model_dump_json()


@FUZZ
@given(
    where=st.sampled_from(["data", "review result", "last_run", "rate_limits", "metrics"]),
    depth=st.integers(150, 260),
    kind=st.sampled_from(["list", "dict"]),
)
@example(where="data", depth=199, kind="list")
@example(where="data", depth=200, kind="dict")
def test_a_deeply_nested_state_is_read_and_saved_or_refused_untouched(where, depth, kind):
    """A state nesting 150 to 260 levels somewhere: read and saved again, or 74."""
    value = nested(depth, kind=kind)
    document: dict[str, Any] = {"schema_version": 2, "agent": "a"}
    if where == "data":
        document["data"] = {"x": value}
    elif where == "review result":
        document["review"] = [
            {"id": "h", "run_id": "r", "at": "2026-11-22T03:10:00Z", "result": {"x": value}}
        ]
    else:
        document[where] = value
    with scratch_home(a=PUBLISHER) as home:
        write_state(home, dumps(document))
        check_state_files(home)


# -- journals --------------------------------------------------------------------------


class Crashed:
    """A home whose last run committed actions and spends, then could not save: its journal."""

    def __init__(self, home: Path) -> None:
        write_agent(home, "a", PUBLISHER)
        self.home = home
        first = run(home, overrides={"keys": ["k0"]})
        assert first.exit_code == 0, first.message
        crashed = run(home, overrides={"keys": ["k1", "k2"]}, fs=full_disk())
        assert crashed.exit_code == 74, crashed.message
        self.run_id = crashed.run_id
        self.files = snapshot(home)
        self.journal = written(self.files.pop("a.journal"))
        self.records = [json.loads(line) for line in self.journal.splitlines()]
        assert [r["op"] for r in self.records] == ["begin"] + ["spend", "intent", "commit"] * 2

    def reset(self, journal: bytes, effects: dict[str, int]) -> None:
        """Put back the files as the crashed run left them, with ``journal`` and ``effects``."""
        state = self.home / "state"
        for path in state.iterdir():
            if path.name != "a.lock":
                path.unlink()
        for name, data in self.files.items():
            (state / name).write_bytes(data)
        (state / "a.journal").write_bytes(journal)
        outbox = self.home / "outbox"
        shutil.rmtree(outbox, ignore_errors=True)
        outbox.mkdir()
        for key, times in effects.items():
            if times:
                (outbox / key).write_text("published\n" * times)
        (self.home / "logs" / "a.jsonl").unlink(missing_ok=True)

    def effects(self) -> dict[str, int]:
        """How many times each key was published."""
        return {p.name: len(p.read_text().splitlines()) for p in (self.home / "outbox").iterdir()}


@pytest.fixture(scope="module")
def crashed():
    """A journal written by a real run (spend, publish k1, spend, publish k2) that died."""
    with scratch_home() as home:
        yield Crashed(home)


def journal_of(records: list[Any]) -> bytes:
    """Records as journal lines."""
    return b"".join(dumps(record) + b"\n" for record in records)


def test_a_journal_cut_at_every_byte_is_recovered_exactly_once(crashed):
    """Cut anywhere, a journal is recovered: nothing committed lost, no effect done twice."""
    ends = []  # where each record's JSON ends (its newline is not needed to count)
    offset = 0
    for line in crashed.journal.splitlines(keepends=True):
        ends.append(offset + len(line.rstrip(b"\n")))
        offset += len(line)
    ops = [(r["op"], r.get("key")) for r in crashed.records]
    for cut in range(len(crashed.journal) + 1):
        whole = [record for record, end in zip(ops, ends, strict=True) if end <= cut]
        # do() runs once its intent is durable, and the commit follows it: with an intent
        # alone the effect may or may not have happened. Both are tried, cut by cut.
        effects = {"k0": 1} | {
            key: int(("commit", key) in whole or (("intent", key) in whole and cut % 2 == 0))
            for key in ("k1", "k2")
        }
        crashed.reset(crashed.journal[:cut], effects)
        outcome = run(crashed.home, overrides={"keys": ["k1", "k2"]})
        assert outcome.exit_code == 0, (cut, outcome.message)
        assert crashed.effects() == {"k0": 1, "k1": 1, "k2": 1}, cut
        assert not (crashed.home / "state" / "a.journal").exists()
        store = FileStore(crashed.home / "state")
        state, ledger = store.load("a"), store.load_ledger("a")
        for key in ("k1", "k2"):
            entry = ledger.get("publish", key)
            assert entry is not None, (cut, key)
            assert entry.status == "committed", (cut, key)
            if ("commit", key) in whole:  # committed by the crashed run: kept as it was
                assert (entry.run_id, entry.result) == (crashed.run_id, {"key": key}), cut
        spent = [s for s in state.budget.spends if s.run_id == crashed.run_id]
        assert len(spent) == whole.count(("spend", None)), cut
        recorded = [e for e in state.errors if e.run_id == crashed.run_id]
        assert [e.category for e in recorded] == (["crashed"] if whole else []), cut


def check_journal(crashed: Crashed, journal: bytes) -> None:
    """The next run recovers ``journal`` and saves what the next run reads, or exits 74."""
    crashed.reset(journal, {"k0": 1})
    before = snapshot(crashed.home)
    store = FileStore(crashed.home / "state")
    try:
        records = store.pending("a")
    except StateError:
        records = None
    outcome = run(crashed.home, overrides={"keys": ["k1", "k2"]})
    note_exit(outcome.exit_code)
    assert "\n" not in outcome.message
    if records is None:
        assert outcome.exit_code == 74, outcome.message
        assert snapshot(crashed.home) == before
        assert crashed.effects() == {"k0": 1}, "no agent code ran"
        for command in (["ledger", "a"], ["review", "list", "a"]):
            assert_clean(cli(crashed.home, *command), {74})
    else:
        assert outcome.exit_code in {0, 1, 75}, outcome.message
        assert not (crashed.home / "state" / "a.journal").exists()
        assert readable(crashed.home), "saved in a form the next run refuses"
        assert run(crashed.home).exit_code in {0, 1, 75}


def _mutated(records: list[dict], line: int, **changes: Any) -> bytes:
    return journal_of(_mutated_records(records, line, **changes))


NAMED_JOURNAL_DAMAGE = {
    "empty run id": lambda r: _mutated(r, 0, run_id=""),
    "empty run id everywhere": lambda r: journal_of([{**x, "run_id": ""} for x in r]),
    "NaN spend": lambda r: _mutated(r, 1, usd=math.nan),
    "1e400 spend": lambda r: _mutated(r, 4, usd="@1e400@"),
    "negative tokens": lambda r: _mutated(r, 1, tokens=-1),
    "NaN result": lambda r: _mutated(r, 3, result={"key": math.nan}),
    "year 9999": lambda r: _mutated(r, 2, at="9999-12-31T23:59:59Z"),
    "year 9999 everywhere": lambda r: journal_of([{**x, "at": "9999-01-01T00:00:00Z"} for x in r]),
    "year 2200 in UTC, 2201 in UTC-12": lambda r: _mutated(r, 3, at="2200-12-31T20:00:00-12:00"),
    "missing zone": lambda r: _mutated(r, 3, at="2026-11-22T12:00:00"),
    "wrong agent": lambda r: _mutated(r, 0, agent="b"),
    "another run's record": lambda r: _mutated(r, 5, run_id="20261122T120000Z-000000"),
    "unknown op": lambda r: _mutated(r, 2, op="publish"),
    "unknown key": lambda r: _mutated(r, 4, extra=1),
    "no begin": lambda r: journal_of(r[1:]),
    "two begins": lambda r: journal_of([r[0], *r]),
    "a blank line": lambda r: journal_of(r[:3]) + b"\n" + journal_of(r[3:]),
    "not JSON": lambda r: journal_of(r[:2]) + b"\xff\xfe\n" + journal_of(r[3:]),
    "a result nested 300 deep": lambda r: _mutated(r, 3, result=nested(300)),
}


@pytest.mark.parametrize("damage", NAMED_JOURNAL_DAMAGE.values(), ids=NAMED_JOURNAL_DAMAGE)
def test_named_journal_damage_is_refused_and_left_in_place(crashed, damage):
    """Each damage the issue names (empty run id, NaN spend, year 9999, no zone...): 74."""
    journal = damage(crashed.records)
    with pytest.raises(ValueError, match=r"."):
        parse_lines(journal, agent="a")
    check_journal(crashed, journal)


def _everywhere(records: list[dict], **changes: Any) -> bytes:
    return journal_of([{**record, **changes} for record in records])


def _appended(records: list[dict], *extra: dict) -> bytes:
    base = {"run_id": records[0]["run_id"], "at": records[0]["at"]}
    return journal_of([*records, *({**base, **record} for record in extra)])


NAMED_JOURNAL_ODDITIES = {
    "times in UTC+14": lambda r: _everywhere(r, at="2026-11-23T01:59:59+14:00"),
    "times in 1970": lambda r: _everywhere(r, at="1970-01-01T00:00:00Z"),
    "times at the end of 2200": lambda r: _everywhere(r, at="2200-12-31T23:59:59Z"),
    "the largest spend": lambda r: _mutated(r, 1, usd=1e9, tokens=10**12),
    "a 200-character run id": lambda r: _everywhere(r, run_id="é" * 200),
    "a result as deep as a line may be": lambda r: _mutated(r, 3, result=nested(199)),
    "a result with a 400-digit int": lambda r: _mutated(r, 3, result=10**400),
    "an odd action and key": lambda r: _mutated(
        _mutated_records(r, 2, action="pub lish\n", key="\u2028🔑"),
        3,
        action="pub lish\n",
        key="\u2028🔑",
    ),
    "a reserve, then its settle": lambda r: _appended(
        r,
        {"op": "reserve", "id": "call-1", "usd": 0.5, "tokens": 100},
        {"op": "settle", "id": "call-1", "usd": 0.1, "tokens": 20},
    ),
    "a reserve never settled": lambda r: _appended(r, {"op": "reserve", "id": "c", "usd": 1e9}),
    "a settle of no reserve": lambda r: _appended(r, {"op": "settle", "id": "c", "usd": 1}),
    "an undo, then undone": lambda r: _appended(
        r,
        {"op": "undo", "action": "publish", "key": "k2"},
        {"op": "undone", "action": "publish", "key": "k2"},
    ),
    "an undo that failed": lambda r: _appended(
        r,
        {"op": "undo", "action": "publish", "key": "k1"},
        {"op": "undo_failed", "action": "publish", "key": "k1", "error": "x" * 1000},
    ),
}


def _mutated_records(records: list[dict], line: int, **changes: Any) -> list[dict]:
    changed = copy.deepcopy(records)
    changed[line] = {**changed[line], **changes}
    return changed


@pytest.mark.parametrize("oddity", NAMED_JOURNAL_ODDITIES.values(), ids=NAMED_JOURNAL_ODDITIES)
def test_odd_but_valid_journal_records_are_recovered_into_a_state_that_loads(crashed, oddity):
    """Boundary times, amounts, ids and depths a journal may hold: folded, saved, read again."""
    journal = oddity(crashed.records)
    parse_lines(journal, agent="a")
    check_journal(crashed, journal)


@FUZZ
@given(data=st.data())
def test_any_journal_damage_is_recovered_and_saved_or_refused_untouched(crashed, data):
    """Journal records damaged at random, maybe cut short: recovered and saved, or 74."""
    document = data.draw(damaged(st.just(crashed.records), most=3))
    journal = journal_of(document)
    if data.draw(st.booleans()):
        journal = journal[: data.draw(st.integers(0, len(journal)))]
    check_journal(crashed, journal)


# -- agent names -----------------------------------------------------------------------

NAME_MAX = 255
"""The longest file name Linux takes: a longer agent name cannot be an agents/ directory."""

agent_names = st.one_of(
    st.text(argv_characters, max_size=20),
    st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,40}\Z"),
    st.from_regex(r"\A[a-z0-9][a-z0-9_-]{200,300}\Z"),
    st.sampled_from(["..", "../x", "a/b", "/etc", "-p", "--help", "A", "a b", "a\x00", "é"]),
)


def tree(root: Path) -> set[str]:
    """Every path under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@FUZZ
@given(name=agent_names, command=st.sampled_from([["run"], ["ledger"], ["review", "list"]]))
@example(name="a" * 300, command=["ledger"])
@example(name="a" * NAME_MAX, command=["run"])
@example(name="../../etc/passwd", command=["run"])
def test_any_agent_name_is_unknown_or_invalid(name, command):
    """Random names to run, ledger and review list: 78 or 2, one line, nothing written outside."""
    with scratch_home() as home:
        around, inside = tree(home.parent), tree(home)
        result = cli(home, *command, "--", name)
        note_exit(result.exit_code)
        assert_clean(result, {2, 78})
        assert tree(home.parent) - around <= {"home/logs", f"home/logs/{name}.jsonl"}
        assert tree(home) - inside <= {"logs", f"logs/{name}.jsonl"}


def test_a_run_of_a_name_too_long_for_a_file_says_one_line():
    """`agentops run` of a 300-character name: one line, exit 2 or 78."""
    with scratch_home() as home:
        assert_clean(cli(home, "run", "a" * 300), {2, 78})


def test_review_list_of_an_empty_name_is_refused():
    """`agentops review list ''` is an invalid agent name (2), like `run ''` and `ledger ''`."""
    with scratch_home() as home:
        assert_clean(cli(home, "run", ""), {2})
        assert_clean(cli(home, "review", "list", ""), {2})


# -- Retry-After -----------------------------------------------------------------------

http_dates = st.builds(
    format_datetime,
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-23, minutes=-59)), None]),
    ),
)
retry_afters = st.one_of(
    st.text(),
    st.text(st.sampled_from("0123456789 ,:+-.GMTMonDecZe\t")),
    st.from_regex(r"\A\s*[0-9]{1,308}\s*\Z"),
    http_dates,
    http_dates.map(lambda d: d.replace("GMT", "+9999")),
    st.sampled_from(["", " ", "-1", "1e3", "inf", "NaN", "٣", "²", "0x10", "1.5"]),
)


@CHEAP
@given(value=retry_afters)
@example(value="Fri, 31 Dec 9999 23:59:59 GMT")
@example(value="Mon, 01 Jan 0001 00:00:00 +2359")
@example(value="Mon, 32 Jan 2026 00:00:00 GMT")
def test_parse_retry_after_never_raises_and_is_finite(value):
    """Any Retry-After gives None or a finite number of seconds, at least 0; never raises."""
    wait = parse_retry_after(value, now=T0)
    assert wait is None or (isinstance(wait, float) and math.isfinite(wait) and wait >= 0)


def test_a_retry_after_of_400_digits_is_finite_or_none():
    """A Retry-After of 400 digits is not an infinite wait."""
    wait = parse_retry_after("9" * 400, now=T0)
    assert wait is None or math.isfinite(wait)


# -- the lock and the deadline marker --------------------------------------------------

lock_documents = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "token": st.one_of(st.integers(), odd_values),
            "pid": st.one_of(st.integers(), odd_values),
            "host": odd_values,
            "run_id": odd_values,
            "since": st.one_of(stamps, odd_stamps),
        },
    ),
    odd_values,
)


@FUZZ
@given(lock=st.one_of(lock_documents.map(dumps), st.binary(max_size=60)))
@example(lock=b'{"token": 10}')
@example(lock=b'{"since": "9999-12-31T23:59:59"}')
def test_any_lock_file_content_is_harmless(lock):
    """Whatever state/a.lock holds (it names the last holder), a run and reset still work."""
    with scratch_home(a=HELLO) as home:
        (home / "state").mkdir()
        (home / "state" / "a.lock").write_bytes(lock)
        assert_clean(cli(home, "run", "a"), {0})
        assert_clean(cli(home, "reset", "a", "--circuit"), {0})


@pytest.mark.parametrize("lock", [b'{"token": 1e400}', b'{"pid": -Infinity}'])
def test_a_lock_holding_1e400_is_harmless(lock):
    """A lock file naming token 1e400 (or pid -Infinity) does not stop the run with a bug."""
    with scratch_home(a=HELLO) as home:
        (home / "state").mkdir()
        (home / "state" / "a.lock").write_bytes(lock)
        assert_clean(cli(home, "run", "a"), {0, 74})


marker_stamps = st.one_of(stamps, in_range.map(lambda at: at.replace(tzinfo=None).isoformat()))


@FUZZ
@given(
    first=st.one_of(
        st.fixed_dictionaries({"run_id": odd_values, "started_at": marker_stamps}).map(dumps),
        st.binary(max_size=40),
    ),
    rest=st.sampled_from([b"", b"\n", b"\nabandoned: timeout\n", b'\n  File "x", line 1 in run\n']),
)
def test_any_deadline_marker_is_recorded_or_ignored(first, rest):
    """A deadline marker left by a dead run: the next run records it or ignores it; never 70."""
    # Out-of-range and zoneless years are pinned by test_a_deadline_marker_from_year_...
    with scratch_home(a=HELLO) as home:
        (home / "state").mkdir()
        (home / "state" / "a.deadline").write_bytes(first + rest)
        assert_clean(cli(home, "run", "a"), {0})
        assert readable(home)


@pytest.mark.parametrize("started_at", ["9999-12-31T23:59:59", "0001-01-01T00:00:00"])
def test_a_deadline_marker_from_year_9999_or_1_is_refused_or_ignored(started_at):
    """A deadline marker stamped out of range: ignored, or 74; never 70."""
    marker = json.dumps({"run_id": "r", "started_at": started_at}).encode() + b"\nstuck\n"
    with scratch_home(a=HELLO) as home:
        (home / "state").mkdir()
        (home / "state" / "a.deadline").write_bytes(marker)
        assert_clean(cli(home, "run", "a"), {0, 74})
        assert_clean(cli(home, "reset", "a", "--circuit"), {0, 74})


# -- the real executable ---------------------------------------------------------------


@settings(FUZZ, max_examples=4 * SCALE)
@given(
    where=st.sampled_from(["name", "-p", "--params-json"]),
    raw=st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"\x00", b"?")),
)
@example(where="-p", raw=b"name=\xff")
@example(where="name", raw=b"\xff")
def test_any_argv_bytes_through_the_real_executable(where, raw):
    """Bytes that are not UTF-8 in argv, as cron passes them: one line, never 70."""
    args = {
        "name": [b"run", b"--", raw],
        "-p": [b"run", b"a", b"-p", b"name=" + raw if b"=" not in raw else raw],
        "--params-json": [b"run", b"a", b"--params-json", raw],
    }[where]
    with scratch_home(a=HELLO) as home:
        result = subprocess.run(
            [os.fsencode(AGENTOPS), b"--home", os.fsencode(home), *args],
            env=cron_env(home),
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode in DOCUMENTED - {74, 75}, stderr
        assert "Traceback" not in stderr
        assert len(stderr.splitlines()) == (result.returncode != 0), stderr
        assert all(line.startswith("agentops: ") for line in stderr.splitlines())
