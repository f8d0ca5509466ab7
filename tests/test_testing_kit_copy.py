"""The test kit copies the agent as written, not as its real runs left it.

Issue 19, defect 5: the kit copied the agent's whole folder, outputs of
earlier real runs included, so the scaffolded ``http`` template's own test
failed once the agent had run for real.
"""

from __future__ import annotations

import re
import subprocess
import sys

from agentops.testing import AgentHarness
from faultserver import FaultServer, ok
from suite import cron_env, remember

LISTS_ITS_FOLDER = """
from pathlib import Path
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    files: list[str]

def run(params: Params, ctx: Context) -> Result:
    folder = ctx.home / "agents" / ctx.agent
    files = [p for p in folder.rglob("*") if p.is_file()]
    return Result(files=sorted(str(p.relative_to(folder)) for p in files))
"""


def test_what_git_ignores_and_caches_stay_behind(project):
    """The agent's and the project's .gitignore, __pycache__ and .env: left out; the data is in."""
    directory = project.add_agent("lister", LISTS_ITS_FOLDER)
    (directory / ".gitignore").write_text("# outputs\nout/\n*.tmp\n!keep.tmp\n/sent.log\n")
    for path in (
        "out/1.txt",
        "inbox/note.md",
        "deep/x.tmp",
        "sent.log",
        "deep/sent.log",
        "outbox/a.txt",
        "__pycache__/planted.cpython-311.pyc",
        ".env",
    ):
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text("x\n")
    (project.home / ".gitignore").write_text("/agents/*/outbox/\n/state/\n")
    with AgentHarness(directory) as agent:
        run = agent.run()
        assert run.exit_code == 0, run.outcome.message
        # Importing agent.py in the copy may write its own bytecode: what was there did not come.
        files = run.result["files"]
        assert "__pycache__/planted.cpython-311.pyc" not in files
        assert [f for f in files if not f.startswith("__pycache__/")] == [
            ".gitignore",
            "agent.py",
            "agent.toml",
            "deep/sent.log",
            "inbox/note.md",
        ]


def test_the_http_templates_own_test_passes_after_a_real_run(project, invoke, run_agentops):
    """init --template http, one real run against a real feed, then its own test still passes."""
    assert invoke("init", "feed", "--template", "http").exit_code == 0
    directory = project.home / "agents" / "feed"
    toml = directory / "agent.toml"
    toml.write_text(toml.read_text().replace('"example.org"]', '"example.org", "127.0.0.1"]'))
    items = {"items": [{"id": "real-1", "title": "Real"}, {"id": "real-2", "title": "Also"}]}
    with FaultServer() as server:
        url = server.script("/feed.json", ok(items))
        real = run_agentops("run", "feed", "-p", f"feed_url={url}")
    assert real.returncode == 0, real.stderr
    assert len([e for e in project.events("feed") if e["event"] == "action.committed"]) == 2
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=project.home,
        env=cron_env(project.home),
    )
    remember("pytest of an agent that ran for real", tested.stdout, tested.stderr)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\b3 passed\b", tested.stdout), tested.stdout  # the template's three
