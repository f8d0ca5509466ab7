"""The services one invocation runs with: assembled once, from the project and the options."""

from __future__ import annotations

import json

import pytest

from agentops.errors import UsageError
from agentops.project.home import Project as Home
from agentops.run.options import RunOptions
from agentops.run.services import RunServices
from agentops.store.file import FileStore


def test_the_name_is_checked_before_any_path_is_built_from_it(project):
    """A name that is a path is a usage error, and nothing is created."""
    with pytest.raises(UsageError, match="invalid agent name"):
        RunServices.assemble(Home(project.home), "../escape", RunOptions())
    assert sorted(p.name for p in project.home.iterdir()) == ["agents"]


def test_services_log_to_the_agents_file_under_the_run_id_and_redact(project, clock):
    """The logger is bound to the agent and run id; a secret of the environment never reaches it."""
    project.add_agent("hello")
    secret = "sk-live-Zq8Hw3Vb7Nm4Kp0Rt6Yx"
    services = RunServices.assemble(
        Home(project.home),
        "hello",
        RunOptions(clock=clock, environ={"SERVICE_API_KEY": secret}),
    )
    try:
        assert services.run_id.startswith("20261122T120000Z-")
        assert services.log_path == project.log_path("hello")
        services.log.info("probe.said", token=secret)
    finally:
        services.close()
    [line] = [json.loads(line) for line in project.log_path("hello").read_text().splitlines()]
    assert (line["event"], line["agent"], line["run_id"]) == (
        "probe.said",
        "hello",
        services.run_id,
    )
    assert secret not in json.dumps(line)
    assert isinstance(services.store, FileStore)


def test_a_dry_run_marks_every_line(project, clock):
    """Each line a dry run logs says dry_run: true."""
    project.add_agent("hello")
    services = RunServices.assemble(
        Home(project.home), "hello", RunOptions(clock=clock, environ={}, dry_run=True)
    )
    try:
        assert services.dry_run
        services.log.info("probe.said")
    finally:
        services.close()
    [line] = [json.loads(line) for line in project.log_path("hello").read_text().splitlines()]
    assert line["dry_run"] is True


def test_a_store_given_in_the_options_is_the_one_used(project, clock, tmp_path):
    """Tests and tools may hand the run a store of their own."""
    project.add_agent("hello")
    own = FileStore(tmp_path / "elsewhere")
    services = RunServices.assemble(
        Home(project.home), "hello", RunOptions(clock=clock, environ={}, store=own)
    )
    services.close()
    assert services.store is own
