"""`agentops check`: a line per problem, naming its file and line, exit 78; no agent runs."""

from __future__ import annotations

import json

from suite import agent_source

BROKEN_IMPORT = """
from pydantic import BaseModel

class Params(BaseModel):
    pass

class Result(BaseModel):
    ok: bool

raise RuntimeError("the settings file is missing")

def run(params: Params, ctx) -> Result:
    return Result(ok=True)
"""

WRONG_HOOK = agent_source(
    "return Result(ok=True)",
    params="limit: int = 3",
    result="ok: bool",
    extra="""
    def validate(result):
        pass
    """,
)

RUNS_SOMETHING = agent_source(
    """
    Path(ctx.home, "ran").write_text("yes")
    return Result(ok=True)
    """,
    params="limit: int = 3",
    result="ok: bool",
    imports="from pathlib import Path",
)


def test_a_sound_project_passes(project, invoke):
    """Valid agents: exit 0, one line saying so; run() itself is never called."""
    project.add_agent("fine", RUNS_SOMETHING, 'schedule = "@hourly"\n[params]\nlimit = 5\n')
    result = invoke("check")
    assert (result.exit_code, result.output.splitlines()[0]) == (0, "1 agent(s), no problem found")
    assert not (project.home / "ran").exists()


def test_each_problem_names_its_file_and_line(project, invoke):
    """A bad schedule, an import error, a hook's signature, params: a line each, exit 78."""
    project.add_agent("sched", RUNS_SOMETHING, 'description = "x"\nschedule = "every day"\n')
    project.add_agent("imports", BROKEN_IMPORT)
    project.add_agent("hooks", WRONG_HOOK)
    project.add_agent("params", RUNS_SOMETHING, '[params]\nlimit = "many"\nlimt = 2\n')
    result = invoke("check")
    assert result.exit_code == 78
    lines = result.output.splitlines()
    assert any(line.startswith("agents/sched/agent.toml:2: schedule:") for line in lines), lines
    assert (
        "agents/imports/agent.py:10: cannot import: RuntimeError: the settings file is missing"
        in lines
    )
    assert any(
        line.startswith("agents/hooks/agent.py:13: validate() takes the wrong arguments")
        for line in lines
    ), lines
    assert "agents/params/agent.toml:3: [params] limt: unknown param" in lines


def test_json_lists_the_documented_keys(project, invoke):
    """--json: an array of {agent, file, line, problem}."""
    project.add_agent("params", RUNS_SOMETHING, '[params]\nlimit = "many"\n')
    result = invoke("check", "--json")
    assert result.exit_code == 78
    problems = json.loads(result.output)
    assert [list(p) for p in problems] == [["agent", "file", "line", "problem"]]
    assert problems[0] == {
        "agent": "params",
        "file": "agents/params/agent.toml",
        "line": 2,
        "problem": "[params] limit: Input should be a valid integer, "
        "unable to parse string as an integer",
    }


def test_llm_models_and_keys_are_checked(project, invoke):
    """An unknown model, a provider key not in the environment, an unpriced model under a cap."""
    (project.home / "agentops.toml").write_text(
        '[providers.local]\nbase_url = "http://127.0.0.1:8080/v1"\napi_key_env = "LOCAL_LLM_KEY"\n'
        '[models.small]\nprovider = "local"\nname = "small-1"\n'
    )
    project.add_agent(
        "asks",
        RUNS_SOMETHING,
        '[llm]\nmodel = "small"\nfallbacks = ["large"]\n[limits]\ncost_usd_per_day = 1.0\n',
    )
    lines = invoke("check", env={"LOCAL_LLM_KEY": ""}).output.splitlines()
    assert any("model 'large' is not in agentops.toml [models]" in line for line in lines), lines
    assert any("$LOCAL_LLM_KEY is not set for local" in line for line in lines), lines
    assert any("small has no prices, and the agent has a USD cap" in line for line in lines), lines


def test_a_broken_agentops_toml_is_the_one_problem(project, invoke):
    """A project file that cannot be read is reported first and alone."""
    project.add_agent("fine", RUNS_SOMETHING)
    (project.home / "agentops.toml").write_text("[notify]\nwebhooks = 3\n")
    result = invoke("check")
    assert result.exit_code == 78
    assert result.output.startswith("agentops.toml:2: notify.webhooks:")
