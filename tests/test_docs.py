"""The documents make promises: about the program, about the tests, about their own examples.

The documentation is the site in ``docs/`` and the README. These tests hold
it to the program: each test GUARANTEES.md names exists, every event
agentops logs, every exit code and every state field is documented, every
configuration example validates, and every code block marked runnable runs.

A block is runnable when it is a MyST ``code-block`` with ``:class: runnable``
(or, where MyST is not read, as in the README, when an HTML comment
``<!-- runnable -->`` stands on the line before it). Each page's runnable
blocks run in order in a fresh copy of the repository's project:

- a block with a ``:caption:`` (or ``<!-- runnable: PATH -->``) naming a file
  is written to that file, for the blocks after it;
- a shell block runs in bash with ``-euo pipefail``, ``agentops`` on the PATH,
  and must exit 0;
- a Python block is executed, then each ``test_*`` function it defines is called.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def pages() -> list[Path]:
    """Every page of the documentation: the site's Markdown files, and the README."""
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def page_name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- code blocks ---------------------------------------------------------------------------------

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
MARK = re.compile(r"^<!--\s*runnable(?::\s*(?P<file>\S+))?\s*-->$")


@dataclass
class Block:
    """One fenced block of a page: its language (or directive), options and text."""

    page: Path
    line: int
    lang: str
    directive: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    code: str = ""
    marked: bool = False

    @property
    def runnable(self) -> bool:
        """Marked runnable by the MyST class or by an HTML comment before it."""
        return self.marked or "runnable" in self.options.get("class", "").split()

    @property
    def file(self) -> str | None:
        """The file a block stands for: its caption's first word, if that is a path."""
        caption = self.options.get("caption", "").split()
        return caption[0] if caption and ("/" in caption[0] or "." in caption[0]) else None

    def where(self) -> str:
        return f"{page_name(self.page)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, in order (nested fences are part of their block)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        mark = MARK.match(lines[index - 1].strip()) if index else None
        directive = None
        if info.startswith("{"):
            directive, _, info = info[1:].partition("}")
            info = info.strip()
        block = Block(path, index + 1, info.split()[0] if info else "", directive)
        if mark:
            block.marked = True
            if mark["file"]:
                block.options["caption"] = mark["file"]
        index += 1
        while directive and index < len(lines) and (option := OPTION.match(lines[index])):
            block.options[option["key"]] = option["value"].strip()
            index += 1
        body = []
        while index < len(lines) and not (
            lines[index].startswith(fence[0] * len(fence))
            and lines[index].strip() == fence[0] * len(lines[index].strip())
        ):
            body.append(lines[index])
            index += 1
        index += 1
        block.code = "\n".join(body).strip("\n") + "\n"
        if block.directive in {None, "code-block", "code"}:
            found.append(block)
    return found


def every_block() -> list[Block]:
    return [block for path in pages() for block in blocks(path)]


def test_the_block_reader_sees_the_markers():
    """The reader finds runnable blocks, their files and the README's comment markers."""
    found = every_block()
    runnable = [block for block in found if block.runnable]
    assert len(runnable) >= 10
    assert any(block.file == "agents/fetcher/agent.py" for block in runnable)
    assert any(block.lang == "sh" and not block.file for block in runnable)
    assert any(block.page.name == "README.md" for block in runnable)


# -- GUARANTEES.md -------------------------------------------------------------------------------


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


def test_the_readme_and_the_site_link_the_guarantees():
    """People find the promises from the README and from the site's first page."""
    assert "(GUARANTEES.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(guarantees.md)" in (DOCS / "index.md").read_text(encoding="utf-8")
    assert "../GUARANTEES.md" in (DOCS / "guarantees.md").read_text(encoding="utf-8")


# -- the test kit example ------------------------------------------------------------------------


def test_the_test_kit_example_passes(tmp_path, monkeypatch):
    """The example an agent author copies first works as printed, beside the agent it tests."""
    files = {
        block.file: block.code
        for block in blocks(DOCS / "writing-an-agent.md")
        if block.file and block.file.startswith("agents/fetcher/")
    }
    assert set(files) == {
        "agents/fetcher/agent.toml",
        "agents/fetcher/agent.py",
        "agents/fetcher/test_fetcher.py",
    }
    test = files.pop("agents/fetcher/test_fetcher.py")
    assert "AgentHarness" in test
    for name, code in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(test, "writing-an-agent.md", "exec"), namespace)  # noqa: S102 - the docs' own code
    namespace["test_fetches_and_counts"]()  # type: ignore[operator]


# -- what the program writes and exits with ------------------------------------------------------

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


def test_every_event_agentops_logs_is_in_the_reference():
    """People grep logs for events: each one agentops writes is documented."""
    reference = (DOCS / "reference" / "log-events.md").read_text(encoding="utf-8")
    events = logged_events()
    assert {"run.started", "action.committed", "notify.sent"} <= events  # the scan finds them
    assert sorted(e for e in events if f"`{e}`" not in reference) == []


def documented_exit_codes() -> set[int]:
    text = (DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    return {int(code) for code in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}


def test_the_exit_codes_documented_are_those_the_program_defines():
    """Each code an error carries is in the table, and the table lists no other."""
    from agentops.errors import AgentOpsError  # noqa: PLC0415

    def subclasses(cls: type) -> list[type]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]

    defined = {cls.exit_code for cls in subclasses(AgentOpsError)}
    defined |= {0, 70}  # done, and an unexpected error (a bug), which no error class carries
    assert documented_exit_codes() == defined


def state_fields(model: type[BaseModel]) -> set[str]:
    """Every field name of the state file's model, nested models included."""
    names = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        stack: list[Any] = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names |= state_fields(annotation)
            stack.extend(get_args(annotation))
    return names


def test_every_field_of_the_state_file_is_documented():
    """What an operator reads in state/<name>.json is explained, key by key."""
    from agentops.model.state import AgentState  # noqa: PLC0415

    text = (DOCS / "reference" / "state-file.md").read_text(encoding="utf-8")
    missing = [name for name in sorted(state_fields(AgentState)) if f'"{name}"' not in text]
    assert missing == []


CONFIG_FILES = {"agent.toml": "AgentConfig", "agentops.toml": "ProjectConfig"}


def config_examples() -> list[Block]:
    return [
        block
        for block in every_block()
        if block.lang == "toml" and block.file and Path(block.file).name in CONFIG_FILES
    ]


@pytest.mark.parametrize("block", config_examples(), ids=Block.where)
def test_every_configuration_example_is_valid(block):
    """An agent.toml or agentops.toml the docs show is one agentops takes."""
    from agentops.project import config  # noqa: PLC0415

    model = getattr(config, CONFIG_FILES[Path(block.file).name])
    model.model_validate(tomllib.loads(block.code))


# -- runnable blocks -----------------------------------------------------------------------------


def runnable_pages() -> list[Path]:
    return [path for path in pages() if any(block.runnable for block in blocks(path))]


def project_copy(home: Path) -> None:
    """The repository's project, as a new user has it after a checkout: no state, no output.

    Files are written anew, not copied with their times: `agentops status` reads an
    agent's age from its agent.toml, and a new project's agents have not missed a tick.
    """
    shutil.copytree(
        ROOT / "agents",
        home / "agents",
        ignore=shutil.ignore_patterns("out", "outbox", "__pycache__"),
        copy_function=shutil.copyfile,
    )
    shutil.copyfile(ROOT / "agentops.toml", home / "agentops.toml")


def shell_environment(home: Path) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"AGENTOPS_HOME", "AGENTOPS_STORE_URL", "PYTHONPATH"}
    }
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    environ["HOME"] = str(home)
    return environ


def run_block(block: Block, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.file:
        target = home / block.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
    elif block.lang in {"sh", "bash", "console", "shell"}:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=home,
            env=shell_environment(home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,  # only bounds a hang
            check=False,
        )
        assert done.returncode == 0, (
            f"{block.where()} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    elif block.lang == "python":
        monkeypatch.chdir(home)
        namespace: dict[str, Any] = {"__name__": "__docs__"}
        exec(compile(block.code, block.where(), "exec"), namespace)  # noqa: S102 - the docs' own code
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value):
                value()
    else:
        pytest.fail(f"{block.where()}: a runnable block must be sh, python, or name a file")


@pytest.mark.parametrize("page", runnable_pages(), ids=page_name)
def test_the_runnable_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    """What a page shows as runnable runs, in order, in a fresh copy of the project."""
    home = tmp_path / "home"
    project_copy(home)
    for block in blocks(page):
        if block.runnable:
            run_block(block, home, monkeypatch)
