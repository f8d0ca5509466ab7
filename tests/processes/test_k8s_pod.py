"""The pod `agentops export k8s` writes, run for real: a read-only root, skips that exit 0.

Each test exports the CronJob, then runs its container's command with its
environment in a mount namespace where every file system is read-only but
the pod's emptyDir volumes: what agentops writes anywhere else fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from exported import IMAGE, container
from suite import AGENTOPS, cron_env


def refused(done, code: int, *words: str) -> None:
    """Exit ``code``, nothing on stdout, one line on stderr holding ``words``."""
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("agentops: ")
    for word in words:
        assert word in done.stderr


READ_ONLY_ROOT = """
set -e
mount --bind "$1/state" "$1/state"
mount --bind "$1/logs" "$1/logs"
mount --bind "$2" "$2"
mount --rbind / /
mount -o remount,bind,ro /
shift 2
exec "$@"
"""
"""The pod's file system, in a mount namespace of its own: everything read-only but the
project's state/ and logs/ and a temporary directory (the emptyDirs), which stay writable."""


@pytest.fixture
def pod_home(project):
    """A project with a scheduled agent, to run as its pod would."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("mounts the root file system read-only in a namespace: needs root, unshare")
    project.add_agent("hello", toml='schedule = "*/5 * * * *"\n')
    return project


def pod_run(project, doc) -> subprocess.CompletedProcess[str]:
    """The container's command and environment, run with the pod's read-only root.

    Every file system is read-only but state/ and logs/ under the project and
    a temporary directory (``TMPDIR``), as the pod's emptyDirs are: a write
    anywhere else fails (EROFS), root or not. The store URL comes from a
    Secret in the cluster: here the files of state/ are the store.
    """
    tmp = project.home.parent / "pod-tmp"
    for directory in (project.home / "state", project.home / "logs", tmp):
        directory.mkdir(exist_ok=True)
    spec = container(doc)
    variables = {item["name"]: item["value"] for item in spec["env"] if "value" in item}
    args = [str(project.home) if word == "/srv/agentops" else word for word in spec["args"]]
    return subprocess.run(
        [
            *("unshare", "-m", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT, "pod"),
            *(str(project.home), str(tmp), str(AGENTOPS), *args),
        ],
        env=cron_env(tmp, TMPDIR=str(tmp), **variables),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def pod_export(project, *args: str) -> dict:
    """The CronJob `agentops export k8s` writes for hello."""
    done = subprocess.run(
        [
            *(str(AGENTOPS), "--home", str(project.home), "export", "k8s", "--image", IMAGE),
            *("--time-zone", "UTC", *args),
        ],
        env=cron_env(project.home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (doc,) = yaml.safe_load_all(done.stdout)
    return doc


def test_the_pods_run_writes_only_where_its_volumes_are(pod_home):
    """With every file system read-only but the emptyDirs: it succeeds, its log on stdout too."""
    doc = pod_export(pod_home)
    done = pod_run(pod_home, doc)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    logged = pod_home.log_path("hello").read_text()
    assert done.stdout == logged, "every line of the log, as it is, on stdout"
    assert [json.loads(line)["event"] for line in done.stdout.splitlines()][-1] == "run.finished"
    assert pod_home.state("hello")["last_run"]["status"] == "succeeded"


@pytest.mark.parametrize(("option", "code"), [((), 0), (("--skip-exit-code", "75"), 75)])
def test_a_skipped_run_exits_with_the_skip_exit_code(pod_home, option, code):
    """A paused agent, run as its pod runs it: exit 0 (the Job succeeds), or as configured."""
    paused = subprocess.run(
        [str(AGENTOPS), "--home", str(pod_home.home), "pause", "hello", "--reason", "deploy"],
        env=cron_env(pod_home.home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert paused.returncode == 0, paused.stderr
    done = pod_run(pod_home, pod_export(pod_home, *option))
    assert (done.returncode, done.stderr) == (code, ""), done.stderr
    (skipped,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (skipped["event"], skipped["reason"]) == ("run.skipped", "paused")


def test_a_tick_run_already_ends_its_job_successfully(pod_home):
    """Two pods for one tick (a Job retried by hand, say): the second is skipped, and exits 0."""
    doc = pod_export(pod_home)
    first = pod_run(pod_home, doc)
    assert first.returncode == 0, first.stderr
    second = pod_run(pod_home, doc)
    assert (second.returncode, second.stderr) == (0, ""), second.stderr
    (skipped,) = [json.loads(line) for line in second.stdout.splitlines()]
    assert (skipped["event"], skipped["reason"]) == ("run.skipped", "tick_taken")


@pytest.mark.parametrize("value", ["-1", "256", "zero", "0x4b"])
def test_a_skip_exit_code_that_is_not_one_refuses_the_run(project, run_agentops, value):
    """AGENTOPS_SKIP_EXIT_CODE that is no exit code: exit 78, one line, the agent not run."""
    project.add_agent("hello")
    done = run_agentops("run", "hello", env=cron_env(project.home, AGENTOPS_SKIP_EXIT_CODE=value))
    refused(done, 78, "AGENTOPS_SKIP_EXIT_CODE")
    assert not project.log_path("hello").exists()


def test_a_log_stdout_that_is_neither_on_nor_off_refuses_the_run(project, run_agentops):
    """AGENTOPS_LOG_STDOUT=maybe: exit 78, one line."""
    project.add_agent("hello")
    done = run_agentops("run", "hello", env=cron_env(project.home, AGENTOPS_LOG_STDOUT="maybe"))
    refused(done, 78, "AGENTOPS_LOG_STDOUT")
