"""A run's processes: which cgroups are an agent's, and the tracking an operator may ask for.

In process, what needs no process started: the names of the cgroups whose
leftovers a run of an agent empties (an earlier run's, never another
agent's or another home's), and ``AGENTOPS_PROCESS_TRACKING``. Everything
about processes a run starts and ends (the cgroup, the subreaper, the
process group, the keeper, the hard deadline, ``kill -9``) needs real
processes, and is in tests/processes/test_run_processes.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agentops._infra.log import EventLogger
from agentops.errors import ConfigError
from agentops.run.processes import TRACKINGS, RunProcesses, cgroup_prefix

NAMES = ["a", "ab", "a-b", "a-1", "pub", "pub-2026"]


def test_a_run_cgroup_of_one_agent_never_carries_anothers_prefix(tmp_path):
    """Agents whose names start alike, in two homes: each prefix picks its own runs only."""
    homes = [tmp_path / "one", tmp_path / "two"]
    prefixes = {(name, home): cgroup_prefix(name, home) for name in NAMES for home in homes}
    assert len(set(prefixes.values())) == len(prefixes)
    for mine, theirs in itertools.permutations(prefixes, 2):
        run_cgroup = prefixes[theirs] + "20261122T100000Z-abc123"
        assert not run_cgroup.startswith(prefixes[mine]), (mine, theirs)


def test_the_prefix_is_stable_and_names_the_agent():
    """The same agent of the same home: the same prefix, run after run, whatever the process."""
    home = Path("/srv/agents")
    assert cgroup_prefix("pub", home) == cgroup_prefix("pub", Path("/srv/agents"))
    assert cgroup_prefix("pub", home).startswith("agentops-pub-")
    assert cgroup_prefix("pub", home).endswith("-")


def tracking(environ: dict[str, str]) -> RunProcesses:
    """The run's processes as ``environ`` asks (nothing is tracked until the block is entered)."""
    said: list[object] = []
    return RunProcesses(
        name="pub",
        home=Path("/srv/agents"),
        run_id="r",
        grace_s=1.0,
        deadline_s=60.0,
        log=EventLogger(said.append, {}),
        keeper_log=lambda: EventLogger(said.append, {}),
        environ=environ,
    )


@pytest.mark.parametrize("asked", [*TRACKINGS, " Cgroup\n", "SUBREAPER", ""])
def test_a_known_tracking_is_taken_whatever_its_case(asked):
    """The three means, in any case, spaces around; none asked: the best the kernel offers."""
    processes = tracking({"AGENTOPS_PROCESS_TRACKING": asked})
    assert processes._wanted == (asked.strip().lower() or TRACKINGS[0])
    assert processes.tracking == "group", "nothing is tracked until the run's block is entered"


@pytest.mark.parametrize("asked", ["containers", "cgroup,group", "none"])
def test_an_unknown_tracking_is_a_configuration_error_naming_the_known_ones(asked):
    """78, one line, the variable and every means it may name."""
    with pytest.raises(ConfigError) as refused:
        tracking({"AGENTOPS_PROCESS_TRACKING": asked})
    assert refused.value.exit_code == 78
    assert refused.value.message == (
        f"AGENTOPS_PROCESS_TRACKING is {asked!r}: it must be one of cgroup, subreaper, group"
    )
