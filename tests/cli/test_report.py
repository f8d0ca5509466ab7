"""agentops report: the table, --json with its documented keys, --html, and its mistakes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from agentops.ops.report import (
    ACTION_KEYS,
    CONFIDENCE_KEYS,
    DURATION_KEYS,
    ERROR_KEYS,
    FIGURE_KEYS,
    REPORT_KEYS,
    RETRY_KEYS,
    REVIEW_KEYS,
)
from known_logs import ALPHA, BETA, HOSTILE_ERROR, expect, write_known_logs
from suite import REPO


@pytest.fixture
def known(project):
    """Agents alpha and beta, and their logs, stamped back from now."""
    project.add_agent("alpha")
    project.add_agent("beta")
    write_known_logs(project.home / "logs", now=datetime.now(UTC))
    return project


@pytest.mark.usefixtures("known")
def test_the_table_and_what_it_has_no_room_for(invoke):
    """A row per agent and one for all; below, errors, skips, retries, confidence, review."""
    result = invoke("report")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("UTC (2 agent(s))")
    header = lines[1].split()
    assert header[:6] == ["AGENT", "RUNS", "OK", "P50", "P95", "MAX"]
    alpha, beta, total = (line.split() for line in lines[2:5])
    assert alpha == [
        "alpha",
        "9",
        "44.4%",
        "3",
        "s",
        "8.5",
        "s",
        "10",
        "s",
        "6",
        "3",
        "2",
        "1",
        "3/1/1",
        "500",
        "$0.30",
    ]
    assert beta[:3] == ["beta", "2", "50.0%"]
    assert total[:3] == ["(all)", "11", "45.5%"]
    text = result.stdout
    assert "errors: failed 2, timeout 1, crashed 1, rejected 1, aborted 1" in text
    assert "2 x alpha: run() raised OSError: boom" in text
    assert "skipped: budget 1, circuit_open 1, overlap 1" in text
    assert "retries: http_5xx 2" in text
    assert "confidence: 2 result(s), mean 0.75, min 0.60" in text
    assert "review: held 1, escalated 0, approved 1, rejected 1, dropped 1" in text
    assert "degraded 1, recovered 1, deadline passed 1, unfinished 1, dry runs 1" in text
    assert "2 line(s) not readable as log events" in text
    assert f"1 x {HOSTILE_ERROR}" in text


@pytest.mark.usefixtures("known")
def test_json_has_the_documented_keys_and_known_figures(invoke):
    """--json: REPORT_KEYS, FIGURE_KEYS for each agent and the total, and the right figures."""
    result = invoke("report", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert tuple(report) == REPORT_KEYS
    assert tuple(report["total"]) == FIGURE_KEYS
    expect(report["agents"]["alpha"], ALPHA)
    expect(report["agents"]["beta"], BETA)
    one = json.loads(invoke("report", "beta", "--json").stdout)
    assert list(one["agents"]) == ["beta"]
    assert one["total"] == one["agents"]["beta"]


@pytest.mark.usefixtures("known")
def test_since_narrows_the_period(invoke):
    """--since 3h: only beta's last run and alpha's unfinished one are left."""
    report = json.loads(invoke("report", "--since", "3h", "--json").stdout)
    assert report["bucket"] == "hour"
    assert report["agents"]["beta"]["runs"] == 1
    assert report["agents"]["alpha"]["runs"] == 0
    assert report["agents"]["alpha"]["unfinished"] == 1


@pytest.mark.usefixtures("known")
def test_html_is_written_beside_the_table(invoke, tmp_path):
    """--html FILE writes the page and says so; with --json only the JSON is printed."""
    page = tmp_path / "out" / "report.html"
    result = invoke("report", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"wrote {page}\n")
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert 'data-agent="alpha"' in text
    quiet = invoke("report", "--json", "--html", str(page))
    assert json.loads(quiet.stdout)["agents"]["alpha"]["runs"] == 9
    piped = invoke("report", "--html", "-")
    assert piped.stdout.startswith("<!DOCTYPE html>")
    assert "wrote" not in piped.stdout


def test_mistakes_are_one_line_with_their_exit_code(known, invoke, tmp_path):
    """An unknown agent is 78, a bad --since 2, a page that cannot be written 74."""
    unknown = invoke("report", "nobody")
    assert unknown.exit_code == 78
    assert (
        unknown.stderr == "agentops: unknown agent 'nobody': no agents/nobody/agent.toml, no log\n"
    )
    assert invoke("report", "--since", "a while").exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    unwritable = invoke("report", "--html", str(blocker / "report.html"))
    assert unwritable.exit_code == 74
    assert unwritable.stderr.startswith(f"agentops: {blocker / 'report.html'}: cannot write")
    assert len(unwritable.stderr.splitlines()) == 1
    assert known.home.exists()


def test_a_project_without_agents_or_logs(invoke):
    """No agents: said, exit 0."""
    result = invoke("report")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == "no agents"


def test_the_readme_documents_every_key():
    """Each --json key and sub-key is named in the documentation's section on the report."""
    readme = (REPO / "docs" / "operating.md").read_text()
    section = readme[readme.index("## The report") :]
    section = section[: section.index("\n## ", 1)]
    for key in (
        *REPORT_KEYS,
        *FIGURE_KEYS,
        *DURATION_KEYS,
        *ERROR_KEYS,
        *RETRY_KEYS,
        *ACTION_KEYS,
        *CONFIDENCE_KEYS,
        *REVIEW_KEYS,
    ):
        assert re.search(rf"`{key}`", section), key
    for command in ("agentops logs AGENT", "agentops report [AGENT]"):
        assert command in readme


def test_removed_agents_are_left_out_unless_asked(known, invoke, tmp_path):
    """An agent gone from agents/ is not in the table, the JSON or the page; --removed brings it."""
    for path in (known.home / "agents" / "beta").iterdir():
        path.unlink()
    (known.home / "agents" / "beta").rmdir()
    page = tmp_path / "report.html"
    plain = invoke("report", "--json", "--html", str(page))
    assert list(json.loads(plain.stdout)["agents"]) == ["alpha"]
    assert 'data-agent="beta"' not in page.read_text()
    assert "beta" not in invoke("report").stdout
    asked = invoke("report", "--removed", "--json", "--html", str(page))
    assert list(json.loads(asked.stdout)["agents"]) == ["alpha", "beta"]
    assert 'data-agent="beta"' in page.read_text()
    named = json.loads(invoke("report", "beta", "--json").stdout)
    assert list(named["agents"]) == ["beta"]
