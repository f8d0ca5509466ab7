"""The documents make promises about the tests: each test they name exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def guarantees() -> list[tuple[str, str]]:
    return NODE_ID.findall((ROOT / "GUARANTEES.md").read_text(encoding="utf-8"))


def test_every_guarantee_names_its_tests():
    """Each row of the table names at least one test, and the table is not empty."""
    rows = [
        line
        for line in (ROOT / "GUARANTEES.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| **")
    ]
    assert len(rows) >= 8
    assert all(NODE_ID.search(row) for row in rows)


@pytest.mark.parametrize(("path", "name"), guarantees(), ids="::".join)
def test_a_test_that_guarantees_name_exists(path, name):
    """A renamed or deleted test would leave a promise without its proof."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert name in defined, f"{path} defines no {name}"


def test_the_readme_links_the_guarantees():
    """People find the promises from the README."""
    assert "(GUARANTEES.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


FETCHER_TOML = 'description = "Fetches items"\n'
FETCHER = """
from pydantic import BaseModel


class Params(BaseModel):
    limit: int = 10


class Result(BaseModel):
    fetched: int


def run(params: Params, ctx) -> Result:
    items = ctx.http.get("https://api.example.com/items").json()["items"]
    return Result(fetched=min(len(items), params.limit))
"""


def test_the_readme_test_kit_example_passes(tmp_path, monkeypatch):
    """The example an agent author copies first works as printed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Scaffolding and testing an agent") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 1)]
    agent = tmp_path / "agents" / "fetcher"
    agent.mkdir(parents=True)
    (agent / "agent.toml").write_text(FETCHER_TOML)
    (agent / "agent.py").write_text(FETCHER)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    namespace["test_fetches_and_counts"]()  # type: ignore[operator]


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "info_redacted"}


def logged_events() -> set[str]:
    """Every event name agentops logs itself: literal first arguments of log calls."""
    events = set()
    for path in (ROOT / "src" / "agentops").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and "." in node.args[0].value
            ):
                events.add(node.args[0].value)
    return events


def test_every_event_agentops_logs_is_in_the_readme():
    """People grep logs for events: each one agentops writes is documented."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    events = logged_events()
    assert {"run.started", "action.committed", "notify.sent"} <= events  # the scan finds them
    assert sorted(e for e in events if f"`{e}`" not in readme) == []
