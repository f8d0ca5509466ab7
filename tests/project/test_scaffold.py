"""``agentops init``: a new agent's directory, whose own test passes at once."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from agentops.project.scaffold import TEMPLATES
from suite import cron_env, remember


def test_a_new_agent_s_own_test_passes_at_once(project, invoke):
    """init writes agent.toml, agent.py and a test, and the test passes before any edit.

    One agent of each template, and one ``pytest`` over them all, as a person runs it.
    """
    for template in sorted(TEMPLATES):
        result = invoke("init", f"fresh-{template}", "--template", template)
        assert result.exit_code == 0, result.output
        directory = project.home / "agents" / f"fresh-{template}"
        assert sorted(p.name for p in directory.iterdir()) == [
            "agent.py",
            "agent.toml",
            f"test_fresh_{template}.py",
        ]
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "agents"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=project.home,
        env=cron_env(project.home),
    )
    remember("pytest of new agents", tested.stdout, tested.stderr)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\b\d+ passed\b", tested.stdout), tested.stdout
    assert "failed" not in tested.stdout
    assert invoke("list").exit_code == 0


def test_the_basic_agent_runs_for_real(project, invoke):
    """A basic agent made by init runs: exit 0, silent."""
    assert invoke("init", "greeter").exit_code == 0
    result = invoke("run", "greeter")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert project.state("greeter")["data"] == {"runs": 1}


def test_init_never_overwrites_an_agent(project, invoke):
    """An existing agent directory is refused (2), its files untouched."""
    directory = project.add_agent("taken", toml='description = "mine"\n')
    before = (directory / "agent.toml").read_text()
    result = invoke("init", "taken")
    assert result.exit_code == 2
    assert "exists already" in result.output
    assert (directory / "agent.toml").read_text() == before


def test_init_refuses_a_name_whose_test_another_agent_s_test_would_shadow(project, invoke):
    """my-agent's test would be test_my_agent.py, as my_agent's is: refused (2), nothing written."""
    assert invoke("init", "my_agent").exit_code == 0
    result = invoke("init", "my-agent")
    assert result.exit_code == 2
    assert "test_my_agent.py has the name the test of my-agent would have" in result.output
    assert not (project.home / "agents" / "my-agent").exists()


@pytest.mark.parametrize("name", ["../escape", "Upper", "a/b", ""])
def test_init_refuses_a_name_that_is_not_an_agent_name(project, invoke, name):
    """Names are checked before any path is built from them."""
    result = invoke("init", name)
    assert result.exit_code == 2
    assert not any(p.name != "agents" for p in project.home.iterdir())
    assert list((project.home / "agents").iterdir()) == []


def test_an_unknown_template_is_a_usage_error(project, invoke):
    """--template takes only the templates there are."""
    result = invoke("init", "x", "--template", "quantum")
    assert result.exit_code == 2
    assert not (project.home / "agents" / "x").exists()


def test_an_llm_agent_says_which_model_to_declare_then_runs_on_its_fallback(project, invoke, clock):
    """init --template llm names the model to declare; declared, with no server, rules answer."""
    result = invoke("init", "summariser", "--template", "llm")
    assert "declare the model 'main'" in result.output
    assert "with its provider and its prices" in result.output
    assert invoke("run", "summariser").exit_code == 78  # not declared: found before a call
    (project.home / "agentops.toml").write_text(
        '[providers.nowhere]\nbase_url = "http://127.0.0.1:9/v1"\n\n'
        '[models.main]\nprovider = "nowhere"\nname = "m"\n'
        "input_usd_per_mtok = 1.0\noutput_usd_per_mtok = 1.0\n"
    )
    outcome = project.run("summariser", clock=clock)  # its retries wait on the fake clock
    assert outcome.exit_code == 0, outcome.message
    finished = project.events("summariser")[-1]
    assert (finished["degraded"], finished["result"]["source"]) == (True, "rules")
