"""The real cron daemon runs an agent `agentops cron --install` put in the real crontab.

Debian's cron is installed where it is missing and started if it is not running.
"""

from __future__ import annotations

import json
import time

import pytest

from agentops.project.crontab import Crontab
from suite import crontab_now, eventually


@pytest.mark.usefixtures("cron_daemon")
def test_the_cron_daemon_runs_an_installed_agent(project, invoke, user_crontab):
    """cron --install, then the real daemon runs a * * * * * agent within two minutes: status ok."""
    project.add_agent("minutely", toml='schedule = "* * * * *"\n')
    assert invoke("cron", "--install").exit_code == 0
    # cron notices a changed crontab by its mtime, in whole seconds: a change in
    # the second it last read it would go unseen. Written again a second later.
    time.sleep(1.1)
    Crontab().write(crontab_now())
    attempt = project.home / "state" / "minutely.attempt.json"  # written as the run ends
    ran = eventually(attempt.exists, within_s=300)  # cron starts a job once a minute
    assert ran, f"cron did not run the agent; crontab:\n{crontab_now()}"
    status = json.loads(invoke("status", "minutely", "--json").output)
    assert status[0]["health"] == "ok", status[0]
    assert status[0]["last_run"]["status"] == "succeeded"
    assert status[0]["last_attempt"]["reason"] is None
    assert crontab_now().startswith(user_crontab), "the other lines are byte for byte unchanged"
