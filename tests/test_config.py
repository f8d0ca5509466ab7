import math

import pytest
from pydantic import ValidationError

from agentops.config import (
    DEFAULT_TIMEOUT_S,
    AgentConfig,
    Rate,
    describe_validation_error,
    parse_duration,
    parse_rate,
)


def config_problems(raw: object) -> str:
    """The one-line description of why ``raw`` is not a valid agent.toml."""
    with pytest.raises(ValidationError) as caught:
        AgentConfig.model_validate(raw)
    return describe_validation_error(caught.value)


# parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172_800.0),
        ("1w", 604_800.0),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (" 5M ", 300.0),
    ],
)
def test_parse_duration_reads_unit_text(text, seconds):
    """'30s', '5m', '1h30m' and '2d' are read as seconds, case and padding aside."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("number", "seconds"), [(0, 0.0), (45, 45.0), (2.5, 2.5)])
def test_parse_duration_takes_plain_numbers_as_seconds(number, seconds):
    """A TOML number is a number of seconds, returned as a float."""
    result = parse_duration(number)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value", ["", "5 minutes", "m5", "soon", "5x", "1h 30m", "-5m", None, [], {"m": 5}]
)
def test_parse_duration_refuses_text_that_is_not_a_duration(value):
    """Anything but number-unit pairs is refused with an example of the format."""
    with pytest.raises(ValueError, match=r"expected a duration like '30s'"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_parse_duration_refuses_negative_numbers(value):
    """A negative number of seconds is refused, saying it is negative."""
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_refuses_booleans(value):
    """`timeout = true` is a mistake, not one second."""
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_parse_duration_refuses_nan_and_infinity(value):
    """TOML's `nan` and `inf` are not durations: every run would fail on them."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [1e300, "999999999999999w"])
def test_parse_duration_refuses_durations_too_long_to_time(value):
    """A timeout beyond what the system timer holds is refused, not a crash of every run."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


# parse_rate


@pytest.mark.parametrize(
    ("text", "count", "period_s"),
    [
        ("4/hour", 4, 3600.0),
        ("10/minute", 10, 60.0),
        ("100/day", 100, 86_400.0),
        ("3/15m", 3, 900.0),
        ("2/1h30m", 2, 5400.0),
        ("0/hour", 0, 3600.0),
    ],
)
def test_parse_rate_reads_count_and_period(text, count, period_s):
    """'4/hour', '10/minute' and '3/15m' give the count and the window in seconds."""
    rate = parse_rate(text)
    assert (rate.count, rate.period_s) == (count, period_s)


def test_parse_rate_keeps_the_text_as_written():
    """A rate prints as the operator wrote it, without the padding."""
    rate = parse_rate(" 4/Hour ")
    assert (rate.count, rate.period_s) == (4, 3600.0)
    assert str(rate) == "4/Hour"


def test_parse_rate_returns_a_rate_unchanged():
    """An already parsed rate passes through as it is."""
    rate = Rate(count=4, period_s=3600.0, text="4/hour")
    assert parse_rate(rate) is rate


@pytest.mark.parametrize(
    "value",
    ["", "4", "hour", "4/", "/hour", "-1/hour", "4.5/hour", "four/hour", "4/fortnight", "4/0s", 4],
)
def test_parse_rate_refuses_what_is_not_a_rate(value):
    """A missing count or period, a negative count or an empty window is refused."""
    with pytest.raises(ValueError, match=r"expected a rate like '4/hour'"):
        parse_rate(value)


def test_parse_rate_refuses_a_window_too_long_for_a_date():
    """A window longer than a date can span is refused, not an internal error at run time."""
    with pytest.raises(ValueError, match="rate"):
        parse_rate("1/1000000000d")


# AgentConfig


def test_an_empty_agent_toml_gives_the_defaults():
    """With nothing set: no schedule, the default timeout, no params, no limits."""
    config = AgentConfig.model_validate({})
    assert config.description == ""
    assert config.schedule is None
    assert config.timeout == DEFAULT_TIMEOUT_S == 600.0
    assert config.params == {}
    assert config.limits.runs is None


def test_agent_toml_values_are_parsed():
    """Schedule, a textual timeout, free-form params and a run rate all read as typed values."""
    config = AgentConfig.model_validate(
        {
            "description": "Says hello",
            "schedule": "*/15  * * * *",
            "timeout": "1m30s",
            "params": {"name": "world", "anything": [1, 2]},
            "limits": {"runs": "4/hour"},
        }
    )
    assert config.schedule == "*/15 * * * *"
    assert config.timeout == 90.0
    assert config.params == {"name": "world", "anything": [1, 2]}
    assert config.limits.runs == Rate(count=4, period_s=3600.0, text="4/hour")


def test_a_run_rate_is_written_back_as_text():
    """Dumped as JSON (e.g. for `agentops list --json`), a rate reads as in agent.toml."""
    config = AgentConfig.model_validate({"limits": {"runs": "3/15m"}})
    assert config.model_dump(mode="json")["limits"]["runs"] == "3/15m"


def test_an_unknown_top_level_key_is_an_error_naming_it():
    """A typo such as `scheduel` is refused by name instead of silently ignored."""
    assert config_problems({"scheduel": "@daily"}) == "unknown key 'scheduel'"


def test_an_unknown_nested_key_is_named_with_its_section():
    """A typo inside [limits] is named with its dotted path."""
    assert config_problems({"limits": {"rn": "4/hour"}}) == "unknown key 'limits.rn'"


def test_a_bad_schedule_is_an_error_saying_why():
    """A schedule cron would not accept is refused, naming the key and the reason."""
    problems = config_problems({"schedule": "every day"})
    assert problems.startswith("schedule: 'every day' is not a cron expression")


def test_a_bad_timeout_is_an_error_saying_why():
    """A timeout that is not a duration is refused with an example of the format."""
    problems = config_problems({"timeout": "soon"})
    assert problems == "timeout: expected a duration like '30s', '5m', '1h30m' or '2d', got 'soon'"


def test_a_bad_run_rate_is_an_error_naming_the_nested_key():
    """A bad rate in [limits] names `limits.runs`."""
    problems = config_problems({"limits": {"runs": "lots"}})
    assert problems.startswith("limits.runs: expected a rate like '4/hour'")


# describe_validation_error


def test_describe_validation_error_lists_every_problem_on_one_line():
    """Several mistakes are all reported, each once, separated by '; '."""
    problems = config_problems({"scheduel": "@daily", "timeout": -5, "limits": {"rn": 1}})
    assert "\n" not in problems
    assert sorted(problems.split("; ")) == [
        "timeout: a duration cannot be negative, got -5",
        "unknown key 'limits.rn'",
        "unknown key 'scheduel'",
    ]


def test_describe_validation_error_names_the_top_level():
    """A file that is not a table at all is reported at '(top level)'."""
    assert config_problems("schedule").startswith("(top level): ")


def test_describe_validation_error_names_a_section_of_the_wrong_type():
    """`limits = "4/hour"` (instead of a [limits] table) names `limits`."""
    assert config_problems({"limits": "4/hour"}).startswith("limits: ")
