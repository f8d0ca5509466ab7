"""Scheduled agents, and the CronJobs `agentops export k8s` makes of them, read back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from suite import Project as HomeOnDisk

__all__ = [
    "AGENTS",
    "IMAGE",
    "LONG",
    "PROJECT_TOML",
    "container",
    "env",
    "export",
    "pod",
    "write_agents",
]

LONG = "quarterly_report_for_the_board_" + "and_everyone_who_reads_it_" * 2
"""An agent name with '_', too long for a CronJob name (83 characters)."""


AGENTS = {
    "hourly": 'schedule = "0 * * * *"\ntimeout = "5m"\n',
    "weekdays": 'schedule = "30 7 * * mon-fri"\n[llm]\nmodel = "gpt"\n',
    "nightly": 'schedule = "@daily"\ntimeout = "2s"\n',
    "daily_digest": 'schedule = "0 6 * * *"\n',
    "by_hand": "",
    LONG: 'schedule = "*/15 * * * *"\n',
}


PROJECT_TOML = """
[providers.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "FAKE_OPENAI_KEY"

[models.gpt]
provider = "openai"
name = "gpt-4o-mini"
"""


IMAGE = "registry.example.org/agents:1.4"


def write_agents(project: HomeOnDisk) -> HomeOnDisk:
    """The AGENTS, and a project file declaring the model one of them calls."""
    (project.home / "agentops.toml").write_text(PROJECT_TOML)
    for name, toml in AGENTS.items():
        project.add_agent(name, toml=toml)
    return project


def export(invoke, *args: str, env: dict[str, str] | None = None):
    """Run `agentops export k8s`; its result, and its stream as documents."""
    done = invoke("export", "k8s", "--image", IMAGE, *args, env=env)
    assert done.exit_code == 0, done.stderr
    return done, list(yaml.safe_load_all(done.stdout))


def pod(doc):
    return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(doc):
    (only,) = pod(doc)["containers"]
    return only


def env(doc):
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in container(doc)["env"]
    }
