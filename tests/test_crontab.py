"""The crontab block: `agentops cron --install/--uninstall/--diff` through the real `crontab`.

The end-to-end test installs Debian's cron where it is missing, starts the
daemon, and waits for it to run an agent: the real thing, as a user has it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.project.crontab import Crontab
from system import ensure_tool

HOME = Path("/srv/agents")
BLOCK = "*/5 * * * * PATH=/usr/bin:/bin /x/agentops --home /srv/agents run a --scheduled\n"

# Lines a user may have: anything but our own markers, endings kept exactly.
user_lines = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=40)
    .filter(lambda line: "agentops" not in line)
    .map(lambda line: line + "\n"),
    max_size=8,
).map("".join)


@given(before=user_lines, after=user_lines)
def test_the_block_changes_nothing_else_byte_for_byte(before, after):
    """Installing, reinstalling and removing the block leave every other line as it was."""
    text = before + after
    installed = Crontab.with_block(text, HOME, BLOCK)
    assert installed.startswith(text)
    assert Crontab.block(installed, HOME) == BLOCK
    assert Crontab.with_block(installed, HOME, BLOCK) == installed, "idempotent"
    assert Crontab.without_block(installed, HOME) == text
    # A block between a user's lines is replaced where it stands.
    inside = before + installed[len(text) :] + after
    assert Crontab.with_block(inside, HOME, "# changed\n").startswith(before)
    assert Crontab.with_block(inside, HOME, "# changed\n").endswith(after)


def test_a_last_line_without_newline_gets_one_before_the_block():
    """Cron ignores a last line without a newline: it gets one, and nothing else changes."""
    installed = Crontab.with_block("0 5 * * * /bin/true", HOME, BLOCK)
    assert installed.startswith("0 5 * * * /bin/true\n# >>> agentops /srv/agents >>>\n")


def test_each_home_keeps_its_own_block():
    """Two homes, two blocks: installing one leaves the other alone."""
    both = Crontab.with_block(Crontab.with_block("", HOME, BLOCK), Path("/srv/other"), "# other\n")
    assert Crontab.block(both, HOME) == BLOCK
    assert Crontab.block(both, Path("/srv/other")) == "# other\n"
    assert Crontab.block(Crontab.without_block(both, HOME), Path("/srv/other")) == "# other\n"


# -- the real crontab command ---------------------------------------------------------------


@pytest.fixture
def user_crontab():
    """The real crontab of the user running the suite, given back as it was afterwards."""
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


def crontab_now() -> str:
    return subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout


def test_install_diff_and_uninstall_keep_the_users_lines(project, invoke, user_crontab):
    """--diff shows the block, --install adds it once, --uninstall takes exactly it out."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    diff = invoke("cron", "--diff")
    assert diff.exit_code == 1, diff.output  # as diff(1): there is a difference
    assert "+# >>> agentops" in diff.output
    assert crontab_now() == user_crontab, "--diff changes nothing"

    assert invoke("cron", "--install").exit_code == 0
    assert invoke("cron", "--diff").exit_code == 0, "nothing to change: 0"
    installed = crontab_now()
    assert installed.startswith(user_crontab)
    assert " run hello --scheduled" in installed
    again = invoke("cron", "--install")
    assert "already up to date" in again.output
    assert crontab_now() == installed

    assert invoke("cron", "--uninstall").exit_code == 0
    assert crontab_now() == user_crontab


def test_install_is_refused_while_check_finds_a_problem(project, invoke, user_crontab):
    """A broken agent: --install exits 78 naming it, and the crontab is unchanged."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    project.add_agent("broken", toml='schedule = "every day"\n')
    result = invoke("cron", "--install")
    assert result.exit_code == 78
    assert "agents/broken/agent.toml" in result.output
    assert crontab_now() == user_crontab


@pytest.mark.usefixtures("user_crontab")
def test_check_finds_a_block_out_of_step(project, invoke):
    """After a schedule changes, check says the installed block is out of step (78)."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    assert invoke("cron", "--install").exit_code == 0
    assert invoke("check").exit_code == 0
    project.add_agent("hello", toml='schedule = "*/20 * * * *"\n')
    result = invoke("check")
    assert result.exit_code == 78
    assert result.output.startswith("crontab: this home's block differs from the schedules")


# -- the real cron daemon -------------------------------------------------------------------


@pytest.fixture
def cron_daemon():
    """Debian's cron daemon, started if it is not running (and stopped again if we started it)."""
    cron = ensure_tool("cron", package="cron")
    running = subprocess.run(["pgrep", "-x", "cron"], capture_output=True, check=False)
    if running.returncode == 0:
        yield
        return
    subprocess.run([cron], check=True, timeout=30)  # daemonizes; writes /var/run/crond.pid
    pid_file = Path("/var/run/crond.pid")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.usefixtures("cron_daemon")
def test_the_cron_daemon_runs_an_installed_agent(project, invoke, user_crontab):
    """cron --install, then the real daemon runs a * * * * * agent within two minutes: status ok."""
    project.add_agent("minutely", toml='schedule = "* * * * *"\n')
    assert invoke("cron", "--install").exit_code == 0
    # cron notices a changed crontab by its mtime, in whole seconds: a change in
    # the second it last read it would go unseen. Written again a second later.
    time.sleep(1.1)
    Crontab().write(crontab_now())
    deadline = time.monotonic() + 150
    state = project.state_path("minutely")
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert state.exists(), f"cron did not run the agent; crontab:\n{crontab_now()}"
    time.sleep(1)  # the run that wrote it has finished: its attempt follows its state
    status = json.loads(invoke("status", "minutely", "--json").output)
    assert status[0]["health"] == "ok", status[0]
    assert status[0]["last_run"]["status"] == "succeeded"
    assert status[0]["last_attempt"]["reason"] is None
    assert crontab_now().startswith(user_crontab), "the other lines are byte for byte unchanged"
