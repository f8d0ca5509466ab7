"""``--json`` of every read command: exactly its documented keys.

Each command's keys are a constant beside the code that builds the JSON (a
stable interface for scripts); the JSON must have exactly those keys, in that
order, and the documentation must name each of them where it speaks of the command.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from agentops._infra.log import FIRST_KEYS
from agentops.cli import main
from agentops.cli._common import command_tree
from agentops.cli.ops import HEALTH_KEYS, HEALTH_PROBLEM_KEYS
from agentops.cli.project import LIST_KEYS
from agentops.cli.review import HELD_KEYS
from agentops.cli.store import STORE_CHECK_KEYS
from agentops.model.ledger import ROW_KEYS as LEDGER_KEYS
from agentops.model.state import Held
from agentops.ops.check import PROBLEM_KEYS
from agentops.ops.memory import KEYS as MEMORY_KEYS
from agentops.ops.memory import NOTE_KEYS, WORKING_KEYS
from agentops.ops.report import FIGURE_KEYS, REPORT_KEYS
from agentops.ops.status import ROW_KEYS
from suite import HELLO, REPO, Project, agent_source, invoke_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import click

DRAFTER = agent_source(
    "return Result(confidence=0.6)",
    result="confidence: float",
    extra="""
    def apply(result: Result, ctx: Context) -> None:
        pass
    """,
)

ACTOR = agent_source(
    """
    ctx.action("publish", key="post-1", do=lambda: {"url": "https://example.org/1"})
    return Result(ok=True)
    """,
    result="ok: bool",
)

SICK = agent_source(
    'raise RuntimeError("the feed is down")',
    result="ok: bool",
)


def agentops(home: Path, *args: str):
    """``agentops ARGS`` on ``home``, in-process."""
    return invoke_cli(home, *args, where=__name__)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Agents leaving something for each read command: runs, a held result, a failure, a typo."""
    project = Project(tmp_path_factory.mktemp("json") / "home")
    (project.home / "agents").mkdir(parents=True)
    project.add_agent("hello", HELLO, 'schedule = "@hourly"\ndescription = "greets"\n')
    project.add_agent("drafter", DRAFTER)
    project.add_agent("actor", ACTOR)
    project.add_agent("sick", SICK)
    project.add_agent("typo", HELLO, "[params]\nnmae = 1\n")
    for name, code in (("hello", 0), ("drafter", 0), ("actor", 0), ("sick", 1)):
        assert agentops(project.home, "run", name).exit_code == code
    return project.home


def one_document(home: Path, *args: str, code: int) -> object:
    result = agentops(home, *args)
    assert result.exit_code == code, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_list(home):
    """list --json: an array of LIST_KEYS objects, one per agent."""
    rows = one_document(home, "list", "--json", code=0)
    assert [row["name"] for row in rows] == ["actor", "drafter", "hello", "sick", "typo"]
    assert all(tuple(row) == LIST_KEYS for row in rows)


def test_status(home):
    """status --json: an array of ROW_KEYS objects (also for one AGENT)."""
    rows = one_document(home, "status", "--json", code=0)
    assert len(rows) == 5
    assert all(tuple(row) == ROW_KEYS for row in rows)
    assert [tuple(row) for row in one_document(home, "status", "hello", "--json", code=0)] == [
        ROW_KEYS
    ]


def test_health(home):
    """health --json: HEALTH_KEYS; each problem HEALTH_PROBLEM_KEYS (exit 1: sick is failing)."""
    document = one_document(home, "health", "--json", code=1)
    assert tuple(document) == HEALTH_KEYS
    assert [tuple(problem) for problem in document["problems"]] == [HEALTH_PROBLEM_KEYS]
    assert document["problems"][0]["agent"] == "sick"


def test_check(home):
    """check --json: an array of PROBLEM_KEYS objects (exit 78: typo has an unknown param)."""
    problems = one_document(home, "check", "--json", code=78)
    assert [tuple(problem) for problem in problems] == [PROBLEM_KEYS]
    assert problems[0]["agent"] == "typo"


def test_ledger(home):
    """ledger AGENT --all --json: an array of LEDGER_KEYS objects; without --all, none here."""
    rows = one_document(home, "ledger", "actor", "--all", "--json", code=0)
    assert [tuple(row) for row in rows] == [LEDGER_KEYS]
    assert (rows[0]["status"], rows[0]["result"]) == ("committed", {"url": "https://example.org/1"})
    assert one_document(home, "ledger", "actor", "--json", code=0) == []


def test_review_list(home):
    """review list --json: HELD_KEYS, the agent then the fields of a held result."""
    assert ("agent", *Held.model_fields) == HELD_KEYS
    rows = one_document(home, "review", "list", "--json", code=0)
    assert [tuple(row) for row in rows] == [HELD_KEYS]
    assert (rows[0]["agent"], rows[0]["confidence"]) == ("drafter", 0.6)


def test_logs(home):
    """logs --json: the log's lines as they are, each starting with FIRST_KEYS."""
    result = agentops(home, "logs", "hello", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["run.started", "run.finished"]
    assert all(tuple(line)[: len(FIRST_KEYS)] == FIRST_KEYS for line in lines)


def test_store_check(home):
    """store check --json: STORE_CHECK_KEYS (the file store here; PostgreSQL in its own tests)."""
    document = one_document(home, "store", "check", "--json", code=0)
    assert tuple(document) == STORE_CHECK_KEYS
    assert (document["backend"], document["agents"]) == ("files", 4)


def test_memory(home):
    """memory AGENT --json: MEMORY_KEYS (an agent that never used memory has none of it)."""
    document = one_document(home, "memory", "hello", "--json", code=0)
    assert tuple(document) == MEMORY_KEYS
    assert (document["working"], document["notes"]) == ([], [])


def test_report(home):
    """report --json: REPORT_KEYS; the figures of each agent and the total, FIGURE_KEYS."""
    document = one_document(home, "report", "--json", code=0)
    assert tuple(document) == REPORT_KEYS
    assert list(document["agents"]) == ["actor", "drafter", "hello", "sick", "typo"]
    for figures in [*document["agents"].values(), document["total"]]:
        assert tuple(figures) == FIGURE_KEYS


KEYS = {
    "list": LIST_KEYS,
    "status": ROW_KEYS,
    "health": (*HEALTH_KEYS, *HEALTH_PROBLEM_KEYS),
    "check": PROBLEM_KEYS,
    "ledger": LEDGER_KEYS,
    "review list": HELD_KEYS,
    "logs": FIRST_KEYS,
    "report": (*REPORT_KEYS, *FIGURE_KEYS),
    "store check": STORE_CHECK_KEYS,
    "memory": (*MEMORY_KEYS, *WORKING_KEYS, *NOTE_KEYS),
}
"""Each command with --json, and the keys its JSON has (tested above)."""


def commands(group: click.Group) -> Iterator[tuple[str, click.Command]]:
    for path, command in command_tree(group):
        yield " ".join(path), command


def test_every_command_with_json_is_tested_here():
    """A command that gains --json gains a key constant and a test above."""
    with_json = {
        path
        for path, command in commands(main)
        if any("--json" in param.opts for param in command.params)
    }
    assert with_json == set(KEYS)


# -- the documentation -----------------------------------------------------------------------

SECTIONS = re.split(
    r"(?m)^(?=#{1,4} )",
    "\n".join(path.read_text() for path in sorted((REPO / "docs").rglob("*.md"))),
)


def documentation_of(command: str) -> str:
    """The documentation's sections (# to ####) that speak of ``agentops <command>``.

    Every line of the log is described in "# Log events", which `agentops logs
    --json` prints as it is.
    """
    needles = [f"agentops {command}"] + (["# Log events\n"] if command == "logs" else [])
    return "".join(section for section in SECTIONS if any(n in section for n in needles))


@pytest.mark.parametrize(
    "command",
    [
        "list",
        "status",
        "health",
        "check",
        "ledger",
        "review list",
        "logs",
        "report",
        "store check",
        "memory",
    ],
)
def test_the_readme_documents_every_key(command):
    """Each key of the command's JSON is named (`key`) where the docs speak of the command."""
    text = documentation_of(command)
    missing = [key for key in KEYS[command] if f"`{key}`" not in text]
    assert missing == [], f"agentops {command} --json: the docs lack {missing}"
