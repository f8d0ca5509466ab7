"""The one vocabulary of how a run ended: its table, read back from the code and the docs.

The module's docstring is the table; each row must be what the properties
say, so the words, exit codes and metrics cannot drift apart.
"""

from __future__ import annotations

import re

import pytest

from agentops.model import status
from agentops.model.state import Metrics
from agentops.model.status import ExitCode, RunStatus, SkipReason
from suite import REPO

ROW = re.compile(r"^``(\w+)``\s+(\S+)\s+(\w+)\s+\S", re.MULTILINE)
ROWS = {name: (code, metric) for name, code, metric in ROW.findall(status.__doc__ or "")}


def test_the_table_names_every_status_once():
    """The docstring's table has a row for each RunStatus, and for nothing else."""
    assert set(ROWS) == {s.value for s in RunStatus}


@pytest.mark.parametrize("run_status", list(RunStatus), ids=str)
def test_each_status_has_the_exit_code_and_metric_of_its_row(run_status):
    """The exit code and the metric counter are the table's (aborted: from its error, none)."""
    code, metric = ROWS[run_status.value]
    if run_status is RunStatus.ABORTED:
        assert (code, metric, run_status.metric) == ("2-78", "none", None)
        return
    assert run_status.exit_code == int(code)
    assert run_status.metric == metric


def test_every_metric_a_status_adds_to_is_a_counter_of_the_state():
    """metrics.<counter> exists for each status that counts somewhere."""
    counters = set(Metrics.model_fields)
    assert {s.metric for s in RunStatus if s.metric} <= counters


def test_ok_failed_and_stopped_do_not_overlap():
    """A status is ok, failed, or neither (stopped or skipped by policy): never two of them."""
    assert not {s for s in RunStatus if s.ok} & {s for s in RunStatus if s.failed}
    assert {s for s in RunStatus if s.ok} == {RunStatus.SUCCEEDED, RunStatus.HELD}
    for stopped in (RunStatus.RATE_LIMITED, RunStatus.BUDGET_EXCEEDED, RunStatus.SKIPPED):
        assert not stopped.ok
        assert not stopped.failed


def test_only_executed_runs_are_recorded_and_only_some_failures_trip_the_breaker():
    """Skipped and aborted runs never ran; a crash or an interrupt does not trip the breaker."""
    assert {s for s in RunStatus if not s.executed} == {RunStatus.SKIPPED, RunStatus.ABORTED}
    assert {s for s in RunStatus if s.trips_breaker} == {
        RunStatus.FAILED,
        RunStatus.TIMEOUT,
        RunStatus.REJECTED,
    }
    assert all(s.failed for s in RunStatus if s.trips_breaker)


def test_every_exit_code_is_in_the_documented_table():
    """docs/reference/exit-codes.md lists each ExitCode, by number."""
    page = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE)}
    assert {int(code) for code in ExitCode} <= documented


def test_skip_reasons_are_the_words_the_log_uses():
    """run.skipped reason=... takes one of these, each a lowercase word."""
    assert all(re.fullmatch(r"[a-z_]+", reason.value) for reason in SkipReason)
    assert SkipReason("overlap") is SkipReason.OVERLAP
