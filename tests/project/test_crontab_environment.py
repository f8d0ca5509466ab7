"""The environment cron gives a home's block: what `agentops check` judges scheduled agents in."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from agentops.project.crontab import Crontab
from agentops.project.schedule import CRON_PATH

HOME = Path("/srv/agents")
BLOCK = "*/5 * * * * PATH=/usr/bin:/bin /x/agentops --home /srv/agents run a --scheduled\n"


def test_crons_own_variables_the_lines_above_the_block_and_its_path():
    """SHELL, HOME, LOGNAME; NAME=value lines above the block (quotes and blanks as cron reads)."""
    text = (
        "MAILTO=ops@example.org\n"
        "FEED_TOKEN = 'abc def'  \n"
        '  QUOTED="x y"\n'
        "0 5 * * * /bin/true FAKE=not-a-variable\n"
        "# COMMENTED=out\n"
    )
    text = Crontab.with_block(text, HOME, BLOCK) + "AFTER=too-late\n"
    environ = Crontab.environment(text, HOME)
    user = pwd.getpwuid(os.geteuid())
    assert environ == {
        "SHELL": "/bin/sh",
        "HOME": user.pw_dir,
        "LOGNAME": user.pw_name,
        "USER": user.pw_name,
        "PATH": CRON_PATH,
        "MAILTO": "ops@example.org",
        "FEED_TOKEN": "abc def",
        "QUOTED": "x y",
    }


def test_without_a_block_every_line_counts_as_install_appends_it():
    """No block yet: --install puts it at the end, under every variable line."""
    environ = Crontab.environment("KEY=v\n0 5 * * * /bin/true\nLATER=w\n", HOME)
    assert (environ["KEY"], environ["LATER"]) == ("v", "w")
    assert "KEY" not in Crontab.environment("", HOME)
