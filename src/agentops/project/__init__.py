"""The user's project: its home, configuration, schedules and crontab.

:mod:`.home` finds the home and its agents; :mod:`.config` is the shape of
``agentops.toml`` and ``agent.toml``; :mod:`.units` reads durations, rates and
sizes; :mod:`.schedule` reads cron expressions as Debian's cron does;
:mod:`.crontab` edits the user's crontab; :mod:`.scaffold` writes new agents.
"""
