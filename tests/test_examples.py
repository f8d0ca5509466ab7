"""The example agents and files in the repository do what the README says."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from agentops.project.home import Project as AgentopsProject
from agentops.project.schedule import render_crontab
from fakellm import FakeLLM, reply
from suite import REPO

EXAMPLE_HOME = Path("/srv/agentops")
"""crontab.example shows an install at this path."""


@pytest.fixture
def repo_copy(project):
    """The repository's example agents in a fresh home, so runs leave the repo clean."""
    shutil.copytree(REPO / "agents", project.home / "agents", dirs_exist_ok=True)
    shutil.copy(REPO / "agentops.toml", project.home / "agentops.toml")
    shutil.rmtree(project.home / "agents" / "digest" / "out", ignore_errors=True)
    shutil.rmtree(project.home / "agents" / "triage" / "out", ignore_errors=True)
    return project


def test_hello_runs_as_the_quick_start_says(repo_copy, invoke):
    """`agentops run hello` succeeds and counts its runs in the state file."""
    for expected in (1, 2):
        result = invoke("run", "hello")
        assert (result.exit_code, result.stderr) == (0, "")
        assert repo_copy.state("hello")["data"] == {"runs": expected}
    assert repo_copy.events("hello")[-1]["result"] == {"greeting": "Hello, world!", "runs": 2}


def test_digest_digests_each_note_once(repo_copy, invoke):
    """The digest example writes each inbox note into exactly one digest."""
    inbox = repo_copy.home / "agents" / "digest" / "inbox"
    notes = sorted(p.name for p in inbox.glob("*.md"))
    assert invoke("run", "digest").exit_code == 0
    first = repo_copy.events("digest")[-1]["result"]
    assert first["items"] == notes
    digest = (repo_copy.home / first["digest"]).read_text()
    assert digest.count("\n## ") == len(notes)
    assert "## Release 0.1 is out" in digest

    assert invoke("run", "digest").exit_code == 0
    assert repo_copy.events("digest")[-1]["result"] == {"digest": None, "items": [], "remaining": 0}

    (inbox / "2026-11-23-late.md").write_text("# A late note\n## not a section\nbody\n")
    assert invoke("run", "digest").exit_code == 0
    third = repo_copy.events("digest")[-1]["result"]
    assert third["items"] == ["2026-11-23-late.md"]
    assert (repo_copy.home / third["digest"]).read_text().count("\n## ") == 1
    assert len(list((repo_copy.home / "agents" / "digest" / "out").glob("*.md"))) == 2


def test_digest_dry_run_writes_no_file_and_forgets_nothing(repo_copy, invoke):
    """--dry-run on the digest example writes no digest and keeps every note for later."""
    assert invoke("run", "digest", "--dry-run").exit_code == 0
    assert not (repo_copy.home / "agents" / "digest" / "out").exists()
    assert not repo_copy.state_path("digest").exists()
    assert invoke("run", "digest").exit_code == 0
    assert len(repo_copy.events("digest")[-1]["result"]["items"]) == 3


def test_analyst_asks_the_model_and_recalls_its_last_conclusion(repo_copy, invoke):
    """With a model answering: its validated analysis, noted, and recalled by the next run."""
    toml = repo_copy.home / "agentops.toml"
    analyses = [
        {"trend": "up", "summary": "revenue grew steadily, spring strongest", "confidence": 0.8},
        {"trend": "up", "summary": "growth held", "confidence": 0.6},
    ]
    with FakeLLM() as server:
        toml.write_text(toml.read_text().replace("http://127.0.0.1:11434/v1", server.base_url))
        server.script(*(reply(json.dumps(analysis)) for analysis in analyses))
        for analysis in analyses:
            result = invoke("run", "analyst")
            assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
            finished = repo_copy.events("analyst")[-1]
            assert finished["result"]["source"] == "model"
            assert finished["result"]["summary"] == analysis["summary"]
            assert finished["degraded"] is False
        first, second = (seen.messages[-1]["content"] for seen in server.requests)
    assert server.models() == ["llama3.2", "llama3.2"]
    assert "<untrusted-" in first
    assert "2026-01: 412 orders, 18230 USD" in first
    assert "Earlier conclusions" not in first
    assert "revenue grew steadily, spring strongest" in second.split("Earlier conclusions")[1]


def test_analyst_works_offline_by_rule_when_no_model_answers(repo_copy, invoke):
    """No model server: every model fails, fallback() analyses the figures by rule."""
    result = invoke("run", "analyst")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    finished = repo_copy.events("analyst")[-1]
    assert finished["event"] == "run.finished"
    assert finished["degraded"] is True
    assert finished["result"]["source"] == "rules"
    assert finished["result"]["trend"] == "up"
    assert finished["result"]["months"] == 10
    assert "llm.model_failed" in repo_copy.event_names("analyst")


def test_analyst_reports_raw_figures_when_the_rules_fail_too(repo_copy, invoke):
    """Figures it cannot read: no model, no rules, then what it has: still a (raw) result."""
    result = invoke("run", "analyst", "-p", "data=agents/analyst/data/missing.csv")
    assert (result.exit_code, result.stderr) == (0, "")
    finished = repo_copy.events("analyst")[-1]
    assert finished["result"]["source"] == "raw"
    assert finished["result"]["summary"].startswith("no analysis: [Errno 2]")


def _calls(*calls: tuple[str, dict]):
    """An OpenAI-compatible turn asking for ``calls``, arguments as a JSON string."""
    return reply(
        None,
        finish_reason="tool_calls",
        tool_calls=[
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for n, (name, arguments) in enumerate(calls)
        ],
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_triage_replies_once_and_closes_only_what_a_human_approved(repo_copy, run_agentops):
    """Search, a reply per item exactly once, spam closed only after review approve."""
    toml = repo_copy.home / "agentops.toml"
    out = repo_copy.home / "agents" / "triage" / "out"
    replied = json.dumps({"action": "replied", "note": "answered"})
    with FakeLLM() as server:
        toml.write_text(toml.read_text().replace("http://127.0.0.1:11434/v1", server.base_url))
        server.script(
            _calls(("search_items", {"query": "5521"})),
            _calls(("post_reply", {"item_id": "T-101", "text": "Refunded the second charge."})),
            reply(replied),
            _calls(("close_item", {"item_id": "T-102", "reason": "spam"})),
        )
        held = run_agentops("run", "triage")
        assert (held.returncode, held.stderr) == (0, "")
        assert repo_copy.events("triage")[-1]["status"] == "held"
        assert _lines(out / "replies.jsonl") == [
            {"item": "T-101", "text": "Refunded the second charge."}
        ]
        assert not (out / "closed.jsonl").exists(), "never closed on the model's word"
        listed = run_agentops("review", "list", "triage")
        assert "close_item" in listed.stdout
        assert '"T-102"' in listed.stdout
        (waiting,) = repo_copy.state("triage")["review"]
        approved = run_agentops("review", "approve", "triage", waiting["id"])
        assert approved.returncode == 0, approved.stderr
        assert _lines(out / "closed.jsonl") == [{"item": "T-102", "reason": "spam"}]

        # The next run triages T-101 again (the held run kept nothing): its reply is not
        # sent twice, the closing is the approved one, and T-103 gets its reply.
        server.script(
            _calls(("post_reply", {"item_id": "T-101", "text": "Refunded, as I said."})),
            reply(replied),
            _calls(("close_item", {"item_id": "T-102", "reason": "spam"})),
            reply(json.dumps({"action": "closed", "note": "spam"})),
            _calls(("post_reply", {"item_id": "T-103", "text": "It ships tomorrow."})),
            reply(replied),
        )
        done = run_agentops("run", "triage")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert [r["item"] for r in _lines(out / "replies.jsonl")] == ["T-101", "T-103"]
    assert _lines(out / "closed.jsonl") == [{"item": "T-102", "reason": "spam"}]
    finished = repo_copy.events("triage")[-1]
    assert finished["result"]["triaged"]["T-102"]["action"] == "closed"
    assert repo_copy.state("triage")["data"]["triaged"] == ["T-101", "T-102", "T-103"]


def test_crontab_example_is_the_output_of_agentops_cron():
    """crontab.example is `agentops cron` for the example agents, installed at /srv/agentops.

    Set AGENTOPS_UPDATE_EXAMPLES=1 to rewrite it after changing an agent's schedule.
    """
    specs, problems = AgentopsProject(REPO).agents()
    assert problems == []
    expected = render_crontab(
        [(s.name, s.config.schedule, s.config.description) for s in specs if s.config.schedule],
        program=str(EXAMPLE_HOME / ".venv" / "bin" / "agentops"),
        home=EXAMPLE_HOME,
    )
    path = REPO / "crontab.example"
    if os.environ.get("AGENTOPS_UPDATE_EXAMPLES"):
        path.write_text(expected)
    assert path.read_text() == expected


def test_ci_runs_the_readme_test_command_verbatim():
    """.ci/run calls the Quick start's test command exactly as the README prints it."""
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", quick_start, re.DOTALL)
    setup = [line for block in commands for line in block.splitlines() if line.strip()]
    assert len(setup) == 2, "the Quick start has exactly two set-up commands"
    assert "agentops run hello" in setup[0]
    assert "pytest" in setup[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert setup[1] in ci
