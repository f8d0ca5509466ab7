"""The crontab block: `agentops cron --install/--uninstall/--diff` through the real `crontab`.

The end-to-end test installs Debian's cron where it is missing, starts the
daemon, and waits for it to run an agent: the real thing, as a user has it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.project.crontab import Crontab
from suite import crontab_now

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
    twice = invoke("cron", "--uninstall")
    assert (twice.exit_code, twice.output) == (
        0,
        f"the crontab has no agentops lines for {project.home}: nothing to remove\n",
    )
    assert crontab_now() == user_crontab


def test_install_is_refused_while_check_finds_a_problem(project, invoke, user_crontab):
    """A broken agent: --install exits 78 naming it, and the crontab is unchanged."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    project.add_agent("broken", toml='schedule = "every day"\n')
    result = invoke("cron", "--install")
    assert result.exit_code == 78
    assert "agents/broken/agent.toml" in result.output
    assert crontab_now() == user_crontab


def test_install_tick_puts_one_line_for_every_agent_and_check_agrees(project, invoke, user_crontab):
    """--install --tick: one `agentops tick` line, not one per agent; check finds it in step.

    Switching back to per-agent lines replaces the block; --uninstall takes it out.
    """
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    project.add_agent("other", toml='schedule = "0 3 * * *"\n')
    assert invoke("cron", "--install", "--tick").exit_code == 0
    installed = crontab_now()
    assert installed.startswith(user_crontab)
    block = Crontab.block(installed, project.home)
    assert block is not None
    jobs = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(jobs) == 1
    assert jobs[0].startswith("* * * * * PATH=")
    assert jobs[0].endswith(" tick")
    assert invoke("cron", "--diff", "--tick").exit_code == 0, "nothing to change"
    assert "already up to date" in invoke("cron", "--install", "--tick").output
    checked = invoke("check")
    assert checked.exit_code == 0, checked.output

    assert invoke("cron", "--install").exit_code == 0
    assert " run hello --scheduled" in crontab_now()
    assert " tick\n" not in crontab_now()
    assert invoke("cron", "--uninstall").exit_code == 0
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
