"""Shared fixtures: a project on tmp_path, agents written into it, and ways to run agentops.

``run_agentops`` starts the real ``agentops`` executable as a subprocess, under
cron's minimal environment unless told otherwise. ``invoke`` runs the click
app in-process (``CliRunner``) for fast checks of output and exit codes.

Secrets: the whole session runs with known fake secrets
(:data:`leakscan.FAKE_SECRETS`) and none of the machine's. They reach every run:

- in-process code reads them from ``os.environ``, where they are for the whole
  session (the machine's secret-named variables are removed);
- every subprocess gets them: :func:`cron_env` holds them, and
  ``run_agentops`` adds them to any ``env`` it is given;
- in-process runs (``run_agent`` and ``approve_held``) also get them in
  ``RunOptions.environ``, as a run started by the CLI does (it passes
  ``os.environ``): tests pass ``environ={}`` to keep the machine's
  configuration out, and :func:`_fake_secrets_in_run_options` merges the fakes
  into any explicit mapping, so no test has to remember to.

Everything ``run_agentops`` and ``invoke`` print is remembered
(:func:`remember`), and at the end of the session (``pytest_sessionfinish``)
every file under pytest's base temporary directory and every remembered
output is scanned for each fake secret in every form it may be written in. A
hit fails the session (exit 1) with a report naming the file and the form.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from agentops._infra.redact import is_secret_env_name
from agentops.project.crontab import Crontab
from agentops.run.invocation import Invocation
from faultserver import FaultServer
from leakscan import FAKE_SECRETS, Leak, scan_text, scan_tree
from suite import (  # re-exported: tests import these from conftest too
    AGENTOPS,
    HELLO,
    MADE_OUTSIDE,
    PRINTED,
    REPO,
    T0,
    FakeClock,
    Project,
    cron_env,
    invoke_cli,
    remember,
)
from system import ensure_tool
from webhookserver import Webhook

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [  # what tests import from here (suite.py is where they live)
    "AGENTOPS",
    "HELLO",
    "REPO",
    "T0",
    "FakeClock",
    "Project",
    "cron_env",
    "remember",
]


# The suite keeps its bytecode, whatever PYTHONDONTWRITEBYTECODE says (containers often
# set it): without it every worker compiles every test module again, and so does every
# Python the tests start (the environment is theirs too). It goes to __pycache__/, ignored.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Hypothesis's deadline (200 ms an example) and its too_slow health check measure the
# machine's speed, not the code: no property has them, as those that start processes must not.
settings.register_profile("agentops", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agentops")

PROCESSES = Path(__file__).parent / "processes"
"""The guarantees that need real processes: every test in it is marked ``slow``."""


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's: how many workers ``-n auto`` starts
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Three workers a core: much of the suite waits (on processes, servers), not computes.

    Measured on 2 cores: six workers ended 11 to 14 s before four, eight 30 s
    after six (each worker collects the whole suite, and more processes at
    once cost more CPU). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still says how many,
    as pytest-xdist documents; ``-n 0`` runs the suite in one process.
    """
    del config
    if found := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip():
        return int(found)
    return 3 * len(os.sched_getaffinity(0))


CRON_FIXTURES = frozenset({"machine_cron", "user_crontab", "cron_daemon"})
"""Fixtures of the machine's one cron: its crontabs and its daemon."""

CRON_MODULES = frozenset(
    {
        "tests/processes/test_cron_daemon.py",
        "tests/processes/test_cron_user.py",
        "tests/project/test_crontab.py",
    }
)
"""The modules whose tests use those fixtures: they run on one worker, one after another."""


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # pytest-xdist's, as above
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Tests one at a time to whichever worker is free, but the cron modules' to one worker.

    The tests of the machine's one cron take turns (:func:`machine_cron`, a
    lock): sent to several workers, all but one would wait for the lock
    while the cores idle. The scheduler runs in the controller, which
    collects nothing, so it knows them by their modules (:data:`CRON_MODULES`,
    checked at collection).
    """
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only with workers

    class CronTogether(LoadScopeScheduling):
        # A unit of work is a test, or the cron modules' tests together; the
        # largest unit goes first (--loadscope-reorder), the others in order.
        def _split_scope(self, nodeid: str) -> str:
            return "cron" if nodeid.partition("::")[0] in CRON_MODULES else nodeid

    return CronTogether(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test in tests/processes/ ``slow`` (``-m "not slow"`` is the quick loop).

    The tests of the machine's one cron go to one worker together
    (:func:`pytest_xdist_make_scheduler`). The longest go first
    (a stable sort: a module's tests stay together), so the workers end
    together: those waiting for the cron daemon's minute, then the other
    tests of real processes.
    """
    for item in items:
        if PROCESSES in item.path.parents:
            item.add_marker(pytest.mark.slow)
        if CRON_FIXTURES & set(getattr(item, "fixturenames", ())):
            module = item.path.relative_to(Path(__file__).parent.parent).as_posix()
            if module not in CRON_MODULES:
                pytest.exit(f"{item.nodeid} uses the cron fixtures: add its module to CRON_MODULES")
    items.sort(key=_longest_first)


def _longest_first(item: pytest.Item) -> int:
    if CRON_FIXTURES & set(getattr(item, "fixturenames", ())):
        return 0
    return 1 if PROCESSES in item.path.parents else 2


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project: a home with an agents/ directory."""
    home = tmp_path / "home"
    (home / "agents").mkdir(parents=True)
    return Project(home)


@pytest.fixture
def run_agentops(project: Project, request: pytest.FixtureRequest):
    """Run the real agentops executable as cron would: a subprocess, minimal env, no TTY."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(AGENTOPS), "--home", str(project.home), *args],
            env={**FAKE_SECRETS, **env} if env is not None else cron_env(project.home),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        where = f"{request.node.nodeid}: agentops {' '.join(args)}"
        remember(f"{where}: stdout", result.stdout)
        remember(f"{where}: stderr", result.stderr)
        return result

    return run


@pytest.fixture
def invoke(project: Project, request: pytest.FixtureRequest):
    """Run the click app in-process against the project (:func:`suite.invoke_cli`)."""

    def run(*args: str, env: dict[str, str] | None = None):
        return invoke_cli(project.home, *args, env=env, where=request.node.nodeid)

    return run


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at :data:`suite.T0`, moved only by the test."""
    return FakeClock(T0)


# -- secrets ---------------------------------------------------------------------------

_BASETEMP = pytest.StashKey[Path]()
_LEAKS = pytest.StashKey[list[Leak]]()


def _secret_named(name: str) -> bool:
    # agentops' own rule, and a wider one: the machine's secrets stay out either way.
    return is_secret_env_name(name) or name.endswith(("_KEY", "_TOKEN", "_SECRET", "_PAT"))


def _only_fake_secrets(patch: pytest.MonkeyPatch) -> None:
    # Every secret-named variable goes, but the fakes, which are (re)set.
    for name in list(os.environ):
        if _secret_named(name) and os.environ[name] != FAKE_SECRETS.get(name):
            patch.delenv(name)
    for name, value in FAKE_SECRETS.items():
        patch.setenv(name, value)


@pytest.fixture(scope="session", autouse=True)
def _fake_secrets_for_the_session(tmp_path_factory: pytest.TempPathFactory, request):
    """The session's environment holds the fake secrets, and none of the machine's."""
    request.config.stash[_BASETEMP] = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        _only_fake_secrets(patch)
        yield


@pytest.fixture(autouse=True)
def _no_secrets_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the fake secrets only, whatever an earlier agent set."""
    _only_fake_secrets(monkeypatch)


@pytest.fixture(autouse=True)
def _fake_secrets_in_run_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs given an ``environ`` get the fake secrets in it, as CLI runs do."""
    init = Invocation.__init__

    def with_fakes(self: Invocation, project, name: str, options) -> None:
        if options.environ is not None:
            options = options._replace(environ={**FAKE_SECRETS, **options.environ})
        init(self, project, name, options)

    monkeypatch.setattr(Invocation, "__init__", with_fakes)


def find_leaks(basetemp: Path | None) -> list[Leak]:
    """The fake secrets in every file under ``basetemp`` and in every output remembered."""
    leaks = scan_tree(basetemp) if basetemp is not None and basetemp.is_dir() else []
    for made in MADE_OUTSIDE:  # shared by the workers, in none's own directory
        leaks += scan_tree(made)
    for where, text in PRINTED:
        leaks += scan_text(text, where)
    return leaks


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook may remove the temporary files
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Scan what the session wrote and printed; a secret found fails the session.

    On several workers (pytest-xdist) each scans its own base directory and
    what it printed, and hands its leaks to the controller
    (:func:`pytest_testnodedown`), whose session fails.
    """
    config = session.config
    leaks = config.stash.get(_LEAKS, []) + find_leaks(config.stash.get(_BASETEMP, None))
    config.stash[_LEAKS] = leaks
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["leaks"] = [(leak.secret, leak.where, leak.form) for leak in leaks]
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: called in the controller
def pytest_testnodedown(node: Any, error: object) -> None:
    """Keep the leaks a worker found, for the controller's session to fail on."""
    del error  # a worker that crashed fails the session by itself
    found = getattr(node, "workeroutput", {}).get("leaks", [])
    config = node.config
    config.stash[_LEAKS] = config.stash.get(_LEAKS, []) + [Leak(*leak) for leak in found]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Report the secrets found, one line each, under a red header."""
    leaks = config.stash.get(_LEAKS, [])
    if not leaks:
        return
    terminalreporter.write_sep("=", f"{len(leaks)} fake secrets leaked", red=True, bold=True)
    for leak in leaks:
        terminalreporter.write_line(f"LEAKED {leak}")
    terminalreporter.write_line("the session fails (exit 1): no file or output may hold a secret")


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A server on loopback answering each path with the replies a test scripts (faultserver.py)."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook on loopback recording what it is sent (webhookserver.py), stopped after."""
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ping() -> Iterator[Webhook]:
    """A Healthchecks-style checks service on loopback: a second webhook server."""
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of the suite's own (tests/pgserver.py), for the session."""
    from pgserver import PostgresServer  # noqa: PLC0415 - only PostgreSQL tests start it

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


CRON_LOCK = Path(tempfile.gettempdir()) / "agentops-tests-cron.lock"
"""Held by a test that uses the machine's cron, whichever worker or session it runs in."""


@pytest.fixture
def machine_cron() -> Iterator[None]:
    """The machine's cron (its crontabs, its daemon) for this test alone: a lock on the machine.

    The suite runs on several workers (and a machine may run two suites):
    there is one crontab of root and one cron daemon, so the tests that
    use them take turns. A lock, not a worker of their own: it holds
    whichever workers and sessions the tests land in.
    """
    with CRON_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


@pytest.fixture
def user_crontab(machine_cron: None):
    """The real crontab of the user running the suite, given back as it was afterwards."""
    del machine_cron
    ensure_tool("crontab", package="cron")
    found = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    saved = found.stdout if found.returncode == 0 else None
    mine = 'MAILTO=""\n# a line of the user\'s own\n0 5 * * * /bin/true  # kept as it is\n'
    Crontab().write(mine)
    yield mine
    if saved is None:
        subprocess.run(["crontab", "-r"], capture_output=True, check=False)
    else:
        Crontab().write(saved)
