import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.project.schedule import CRON_PATH, check_schedule, next_run, render_crontab

PROGRAM = "/opt/agentops/.venv/bin/agentops"


def run_lines(crontab: str) -> list[str]:
    """The lines of a crontab that start a job (not comments, blanks or variables)."""
    return [
        line
        for line in crontab.splitlines()
        if line and not line.startswith("#") and not re.match(r"[A-Z_]+=", line)
    ]


# check_schedule


@pytest.mark.parametrize(
    "expr",
    ["* * * * *", "*/15 * * * *", "0 9 * * 1-5", "30 2 1,15 * *", "0 0 * JAN-MAR MON", "0 0 * * 7"],
)
def test_check_schedule_accepts_five_field_expressions(expr):
    """Five-field cron expressions, with ranges, steps, lists and names, are accepted."""
    assert check_schedule(expr) == expr


def test_check_schedule_normalises_whitespace():
    """Extra spaces or tabs between fields are folded to single spaces."""
    assert check_schedule("  */5\t*  * * * ") == "*/5 * * * *"


@pytest.mark.parametrize(
    "macro", ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
)
def test_check_schedule_accepts_cron_macros(macro):
    """Debian cron's @daily-style macros are accepted as written."""
    assert check_schedule(macro) == macro


def test_check_schedule_accepts_reboot():
    """@reboot is accepted although it has no next time."""
    assert check_schedule("@reboot") == "@reboot"


@pytest.mark.parametrize(
    "expr",
    [
        "every day",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "0 0 32 * *",
        "0 0 30 13 *",
        "@often",
    ],
)
def test_check_schedule_refuses_bad_fields(expr):
    """Out-of-range values, zero steps, backward ranges and unknown macros are refused."""
    with pytest.raises(ValueError, match="is not a cron expression"):
        check_schedule(expr)


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 2,4,6 *"])
def test_check_schedule_accepts_days_no_month_listed_has(expr):
    """Debian's cron takes a 30th of February: it never fires, and next_run says so."""
    assert check_schedule(expr) == expr
    assert next_run(expr, datetime(2026, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize("expr", ["0 0 0 * * *", "* * * *", ""])
def test_check_schedule_needs_exactly_five_fields(expr):
    """Six fields (cronsim's seconds) or too few are refused: cron has five."""
    with pytest.raises(ValueError, match="it needs five fields"):
        check_schedule(expr)


@pytest.mark.parametrize("value", [None, 15, ["*", "*", "*", "*", "*"]])
def test_check_schedule_refuses_non_strings(value):
    """A TOML number or array is not a schedule."""
    with pytest.raises(ValueError, match="expected a cron expression"):
        check_schedule(value)


@pytest.mark.parametrize("macro", ["@DAILY", "@Reboot"])
def test_check_schedule_refuses_macros_cron_does_not_know(macro):
    """Debian cron matches @daily-style macros case-sensitively, so @DAILY is not a schedule."""
    # Accepted and rendered as written, it makes `crontab` refuse the whole file.
    with pytest.raises(ValueError, match="not a cron expression"):
        check_schedule(macro)


@pytest.mark.parametrize("expr", ["0 0 L * *", "0 0 * * 1#2"])
def test_check_schedule_refuses_cronsim_extensions_cron_does_not_know(expr):
    """The L and # extensions of cronsim are not Debian cron: cron would refuse the line."""
    with pytest.raises(ValueError, match="not a cron expression"):
        check_schedule(expr)


# next_run


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-22 12:00", "2026-11-22 12:15"),
        ("*/15 * * * *", "2026-11-22 12:07:30", "2026-11-22 12:15"),
        ("0 9 * * 1-5", "2026-11-21 10:00", "2026-11-23 09:00"),
        ("@daily", "2026-11-22 12:00", "2026-11-23 00:00"),
        ("@hourly", "2026-11-22 12:00", "2026-11-22 13:00"),
        ("@yearly", "2026-11-22 12:00", "2027-01-01 00:00"),
    ],
)
def test_next_run_is_when_cron_starts_the_agent_next(expr, after, expected):
    """The next start is the first matching minute strictly after the given time."""
    assert next_run(expr, at(after)) == at(expected)


def test_next_run_of_reboot_is_none():
    """@reboot has no next time on the clock."""
    assert next_run("@reboot", at("2026-11-22 12:00")) is None


SCHEDULES = st.one_of(
    st.builds(
        " ".join,
        st.tuples(
            st.sampled_from(["*", "0", "*/15", "5,35", "10-20", "59"]),
            st.sampled_from(["*", "3", "*/6", "9-17", "23"]),
            st.sampled_from(["*", "1", "15", "1-7", "29"]),
            st.sampled_from(["*", "2", "*/3", "JAN-MAR", "12"]),
            st.sampled_from(["*", "0", "1-5", "MON", "6,7"]),
        ),
    ),
    st.sampled_from(["@hourly", "@daily", "@weekly", "@monthly", "@yearly"]),
)


@given(
    expr=SCHEDULES,
    after=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(2090, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_next_run_is_after_and_stable(expr, after):
    """next_run is strictly later, on a whole minute, and found again from a minute before."""
    upcoming = next_run(check_schedule(expr), after)
    assert upcoming is not None
    assert upcoming > after
    assert (upcoming.second, upcoming.microsecond) == (0, 0)
    assert next_run(expr, upcoming - timedelta(minutes=1)) == upcoming


# render_crontab


def test_render_crontab_runs_each_agent_with_absolute_program_and_quoted_home():
    """Each line starts the absolute program with --home (quoted for the shell) and --scheduled."""
    crontab = render_crontab(
        [("hello", "*/15 * * * *", ""), ("digest", "@daily", "")],
        program=PROGRAM,
        home=Path("/srv/my agents"),
    )
    lines = run_lines(crontab)
    env = f"PATH={CRON_PATH}"
    assert lines == [
        f"*/15 * * * * {env} {PROGRAM} --home '/srv/my agents' run hello --scheduled",
        f"@daily {env} {PROGRAM} --home '/srv/my agents' run digest --scheduled",
    ]
    command = lines[0].split(" ", 5)[5]
    assert shlex.split(command) == [
        env,
        PROGRAM,
        "--home",
        "/srv/my agents",
        "run",
        "hello",
        "--scheduled",
    ]


def test_render_crontab_sets_path_for_each_job_only():
    """Each job gets cron's missing PATH for itself; no PATH= line changes the lines after it."""
    crontab = render_crontab([("hello", "@hourly", "")], program=PROGRAM, home=Path("/srv/a"))
    assert not any(re.match(r"[A-Z_]+=", line) for line in crontab.splitlines())
    assert run_lines(crontab)[0].startswith(f"@hourly PATH={CRON_PATH} ")


def test_render_crontab_takes_another_path():
    """The PATH can be given, e.g. to add the directory of a tool agents call."""
    crontab = render_crontab(
        [("hello", "@hourly", "")], program=PROGRAM, home=Path("/srv/a"), path="/opt/bin:/usr/bin"
    )
    assert run_lines(crontab)[0].startswith("@hourly PATH=/opt/bin:/usr/bin ")


def test_render_crontab_escapes_percent_signs():
    """A '%' in a job line is escaped with a backslash, since cron reads a bare '%' as a newline."""
    crontab = render_crontab(
        [("hello", "@hourly", "")], program=PROGRAM, home=Path("/srv/100%/agents")
    )
    (line,) = run_lines(crontab)
    assert r"/srv/100\%/agents" in line
    assert re.search(r"(?<!\\)%", line) is None


def test_the_crontab_header_never_suggests_a_pipe_into_crontab():
    """`crontab -` with a refusal on its stdin would install an empty crontab: never suggested."""
    crontab = render_crontab([("hello", "@hourly", "")], program=PROGRAM, home=Path("/srv/a"))
    assert "crontab -" not in crontab
    assert "| crontab" not in crontab


def test_render_crontab_describes_each_agent_in_a_comment():
    """A description becomes a one-line comment above its job, even if written on several lines."""
    crontab = render_crontab(
        [
            ("digest", "@daily", "Mails the digest.\n  Reads the inbox first."),
            ("hello", "@hourly", ""),
        ],
        program=PROGRAM,
        home=Path("/srv/a"),
    )
    lines = crontab.splitlines()
    comment = lines.index("# digest: Mails the digest. Reads the inbox first.")
    assert lines[comment + 1].endswith("run digest --scheduled")
    assert not any(line.startswith("# hello") for line in lines)
    assert len(run_lines(crontab)) == 2


def test_render_crontab_with_no_entries_has_no_jobs():
    """With no scheduled agent the crontab holds only its header, and ends with a newline."""
    crontab = render_crontab([], program=PROGRAM, home=Path("/srv/a"))
    assert run_lines(crontab) == []
    assert crontab.endswith("\n")


def test_agentops_cron_leaves_out_agents_without_a_schedule(project, invoke):
    """`agentops cron` lists only agents that have a schedule: the others run by hand."""
    project.add_agent("hello", toml='schedule = "*/15 * * * *"\n')
    project.add_agent("manual", toml='description = "Run it yourself."\n')
    result = invoke("cron")
    assert result.exit_code == 0, result.output
    lines = run_lines(result.output)
    assert len(lines) == 1
    assert lines[0].startswith("*/15 * * * * ")
    assert lines[0].endswith(" run hello --scheduled")
    assert "manual" not in result.output
