"""agent.toml and agentops.toml: typed values, strict numbers, and errors that name the key."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from agentops.errors import ConfigError
from agentops.guards.rates import rate_limits
from agentops.project.config import (
    DEFAULT_KEEP_S,
    DEFAULT_TIMEOUT_S,
    AgentConfig,
    Defaults,
    Llm,
    ProjectConfig,
    describe_validation_error,
    merge_defaults,
)
from agentops.project.home import Project as AgentopsProject
from agentops.project.units import Rate

DAY = 86400.0


def config_problems(raw: object) -> str:
    """The one-line description of why ``raw`` is not a valid agent.toml."""
    with pytest.raises(ValidationError) as caught:
        AgentConfig.model_validate(raw)
    return describe_validation_error(caught.value)


def project_problems(raw: object) -> str:
    """The one-line description of why ``raw`` is not a valid agentops.toml."""
    with pytest.raises(ValidationError) as caught:
        ProjectConfig.model_validate(raw)
    return describe_validation_error(caught.value)


# AgentConfig


def test_an_empty_agent_toml_gives_the_defaults():
    """With nothing set: no schedule, the default timeout, no params or limits, a 30-day ledger."""
    config = AgentConfig.model_validate({})
    assert config.description == ""
    assert config.schedule is None
    assert config.timeout == DEFAULT_TIMEOUT_S == 600.0
    assert config.params == {}
    assert config.limits.runs is None
    assert rate_limits(config.limits) == {}
    assert config.keep_s == DEFAULT_KEEP_S == 30 * DAY
    assert config.permissions.actions is None
    assert config.permissions.hosts is None


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


def test_limits_name_every_rate_by_the_key_its_events_are_counted_under():
    """Runs, requests and each action's commits are counted under their own keys."""
    limits = AgentConfig.model_validate(
        {"limits": {"runs": "4/hour", "requests_per_minute": 30, "actions": {"post": "3/day"}}}
    ).limits
    assert rate_limits(limits) == {
        "runs": Rate(4, 3600.0, "4/hour"),
        "requests": Rate(30, 60.0, "30/minute"),
        "action:post": Rate(3, DAY, "3/day"),
    }


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


@pytest.mark.parametrize("section", ["retry", "circuit", "ledger", "guard", "permissions", "llm"])
def test_an_unknown_key_in_any_section_is_named(section):
    """Every section forbids keys it does not know."""
    assert config_problems({section: {"colour": 1}}) == f"unknown key '{section}.colour'"


def test_a_bad_schedule_is_an_error_saying_why():
    """A schedule cron would not accept is refused, naming the key and the reason."""
    problems = config_problems({"schedule": "every day"})
    assert problems.startswith("schedule: 'every day' is not a cron expression")


def test_a_bad_timeout_is_an_error_saying_why():
    """A timeout that is not a duration is refused with an example of the format."""
    problems = config_problems({"timeout": "soon"})
    assert problems == (
        "timeout: expected a duration like '500ms', '30s', '5m', '1h30m' or '2d', got 'soon'"
    )


def test_a_bad_run_rate_is_an_error_naming_the_nested_key():
    """A bad rate in [limits] names `limits.runs`."""
    problems = config_problems({"limits": {"runs": "lots"}})
    assert problems.startswith("limits.runs: expected a rate like '4/hour'")


def test_a_timeout_in_milliseconds_is_read():
    """`timeout = "1500ms"` is a second and a half."""
    assert AgentConfig.model_validate({"timeout": "1500ms"}).timeout == 1.5


# zero where a positive duration is needed


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "0s"}, "timeout"),
        ({"grace": "0m"}, "grace"),
        ({"retry": {"initial": 0}}, "retry.initial"),
        ({"retry": {"max": "0s"}}, "retry.max"),
        ({"circuit": {"cooldown": "0s"}}, "circuit.cooldown"),
        ({"ledger": {"keep": 0}}, "ledger.keep"),
        ({"llm": {"timeout": "0ms"}}, "llm.timeout"),
    ],
)
def test_zero_is_refused_where_a_wait_must_be_positive(raw, key):
    """A zero timeout, retry wait, cooldown or ledger keep is refused, naming the key."""
    assert config_problems(raw).startswith(f"{key}: must be longer than zero")


def test_a_zero_llm_cache_is_allowed():
    """`[llm] cache` is a plain duration: zero means replies are never reused."""
    assert AgentConfig.model_validate({"llm": {"cache": 0}}).llm.cache == 0.0


# strict numbers


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"limits": {"cost_usd_per_hour": True}}, "limits.cost_usd_per_hour"),
        ({"limits": {"cost_usd_per_day": False}}, "limits.cost_usd_per_day"),
        ({"limits": {"tokens_per_run": True}}, "limits.tokens_per_run"),
        ({"limits": {"requests_per_minute": True}}, "limits.requests_per_minute"),
        ({"limits": {"steps_per_run": True}}, "limits.steps_per_run"),
        ({"retry": {"attempts": True}}, "retry.attempts"),
        ({"circuit": {"failures": True}}, "circuit.failures"),
        ({"guard": {"auto_threshold": True}}, "guard.auto_threshold"),
        ({"llm": {"max_tokens": True}}, "llm.max_tokens"),
        ({"memory": {"keep_notes": True}}, "memory.keep_notes"),
    ],
)
def test_a_boolean_is_never_a_number(raw, key):
    """`cost_usd_per_hour = true` is refused, not read as a dollar."""
    assert config_problems(raw).startswith(f"{key}: Input should be a valid")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"catch_up": "yes"}, "catch_up"),
        ({"catch_up": 1}, "catch_up"),
        ({"llm": {"log_bodies": "no"}}, "llm.log_bodies"),
    ],
)
def test_a_switch_is_true_or_false_never_a_word_or_a_number(raw, key):
    """`catch_up = "yes"` is refused, as `parallel = "4"` is: TOML has booleans."""
    assert config_problems(raw).startswith(f"{key}: Input should be a valid boolean")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"notify": {"manual_runs": "false"}}, "notify.manual_runs"),
        ({"models": {"m": {"provider": "p", "name": "n", "json_mode": 0}}}, "models.m.json_mode"),
    ],
)
def test_a_projects_switch_is_true_or_false_too(raw, key):
    """agentops.toml's booleans are as strict as agent.toml's."""
    assert key in project_problems(raw)
    assert "Input should be a valid boolean" in project_problems(raw)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"limits": {"tokens_per_run": 1.0}}, "limits.tokens_per_run"),
        ({"limits": {"requests_per_minute": "5"}}, "limits.requests_per_minute"),
        ({"retry": {"attempts": "3"}}, "retry.attempts"),
        ({"circuit": {"failures": 2.0}}, "circuit.failures"),
        ({"limits": {"cost_usd_per_hour": "1.5"}}, "limits.cost_usd_per_hour"),
    ],
)
def test_counts_must_be_integers_and_amounts_must_be_numbers(raw, key):
    """A count written as 2.0 or a number written as text is refused, not coerced."""
    assert config_problems(raw).startswith(f"{key}: Input should be a valid")


def test_a_whole_number_of_dollars_is_a_valid_amount():
    """`cost_usd_per_day = 5` (a TOML integer) is five dollars."""
    limits = AgentConfig.model_validate({"limits": {"cost_usd_per_day": 5}}).limits
    assert limits.cost_usd_per_day == 5.0


@pytest.mark.parametrize("value", [math.inf, math.nan, -0.5])
def test_an_amount_must_be_finite_and_not_negative(value):
    """`cost_usd_per_hour = inf`, `nan` or a negative cap is refused."""
    assert config_problems({"limits": {"cost_usd_per_hour": value}}).startswith(
        "limits.cost_usd_per_hour: "
    )


# cross-field rules


def test_retry_max_shorter_than_initial_is_refused():
    """Backoff cannot start above its own ceiling."""
    assert config_problems({"retry": {"initial": "10s", "max": "5s"}}) == (
        "retry: max must not be shorter than initial"
    )
    retry = AgentConfig.model_validate({"retry": {"initial": "10s", "max": "10s"}}).retry
    assert (retry.initial, retry.max) == (10.0, 10.0)


def test_review_threshold_above_auto_threshold_is_refused():
    """Results cannot be both applied and held: review_threshold stays at or below auto."""
    assert config_problems({"guard": {"review_threshold": 0.9}}) == (
        "guard: review_threshold must not be above auto_threshold"
    )


def test_grace_defaults_to_the_timeout_plus_five_minutes():
    """Without `grace`, a run is stale five minutes after it would have timed out."""
    assert AgentConfig.model_validate({"timeout": "10m"}).grace_s == 900.0
    assert AgentConfig.model_validate({"timeout": "10m", "grace": "2h"}).grace_s == 7200.0


def test_an_empty_permitted_host_is_refused():
    """`hosts = [""]` would match nothing anyone meant: refused, naming the entry."""
    assert config_problems({"permissions": {"hosts": [""]}}).startswith("permissions.hosts.0: ")


def test_llm_chain_puts_the_chosen_model_first_then_the_fallbacks_once():
    """A call's model, else its tier's, else the default; fallbacks follow without repeats."""
    llm = Llm(model="big", fallbacks=["small", "big"], tiers={"cheap": "small"})
    assert llm.chain() == ["big", "small"]
    assert llm.chain(tier="cheap") == ["small", "big"]
    assert llm.chain(model="other") == ["other", "small", "big"]
    assert Llm().chain() == []


# [ledger] keep against the schedule


def test_keep_stretches_to_twice_a_monthly_schedules_longest_gap():
    """'0 0 31 * *' can wait 61 days between runs: the default keep grows to 122 days."""
    config = AgentConfig.model_validate({"schedule": "0 0 31 * *"})
    assert config.keep_s == 2 * 61 * DAY
    assert config.ledger.keep == DEFAULT_KEEP_S  # the setting as written is unchanged


def test_an_explicit_keep_shorter_than_the_schedules_gap_is_refused():
    """Entries pruned before the next run would let it redo them: `keep = "30d"` is an error."""
    problems = config_problems({"schedule": "0 0 31 * *", "ledger": {"keep": "30d"}})
    assert "[ledger] keep is shorter than the schedule's longest interval" in problems
    assert "5.2704e+06s" in problems


def test_an_explicit_keep_as_long_as_the_schedules_gap_is_kept_as_set():
    """`keep = "61d"` covers a monthly schedule exactly, and is not stretched."""
    config = AgentConfig.model_validate({"schedule": "0 0 31 * *", "ledger": {"keep": "61d"}})
    assert config.keep_s == 61 * DAY


@pytest.mark.parametrize(
    ("schedule", "keep", "ok"),
    [
        ("@daily", "1d", True),
        ("@daily", "23h", False),
        ("0 9 * * 1-5", "3d", True),  # Friday to Monday
        ("0 9 * * 1-5", "1d", False),
        ("*/15 * * * *", "1h", True),
        ("@reboot", "1h", True),
    ],
)
def test_an_explicit_keep_is_checked_against_any_schedule(schedule, keep, ok):
    """The longest gap between two runs decides, weekends included; @reboot has none."""
    raw = {"schedule": schedule, "ledger": {"keep": keep}}
    if ok:
        AgentConfig.model_validate(raw)
    else:
        assert "[ledger] keep is shorter" in config_problems(raw)


@pytest.mark.parametrize("schedule", [None, "*/5 * * * *", "@daily", "0 0 * * 0", "@reboot"])
def test_keep_stays_at_its_default_for_schedules_that_run_at_least_monthly(schedule):
    """Only a schedule with gaps longer than 30 days stretches the default keep."""
    assert AgentConfig.model_validate({"schedule": schedule}).keep_s == DEFAULT_KEEP_S


def test_a_yearly_schedule_keeps_two_years():
    """'@yearly' runs up to 366 days apart (a leap year): its actions are kept for 732 days."""
    assert AgentConfig.model_validate({"schedule": "@yearly"}).keep_s == 2 * 366 * DAY


def test_a_schedule_restricted_to_one_month_stretches_keep_to_the_next_year():
    """Hourly in January only: the gap from 31 January to 1 January must be covered."""
    config = AgentConfig.model_validate({"schedule": "0 * * 1 *"})
    assert config.keep_s >= 2 * 334 * DAY


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


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            {"store": {"url": "postgress://agentops:Secr3tPw0rd@db/agentops"}},
            "store.url: must be a postgresql:// URL or a libpq keyword string",
        ),
        ({"store": {"schema": "Prod"}}, "store.schema: must be lower-case letters, digits and _"),
        ({"groups": {"bad name!": 2}}, "groups: 'bad name!': must be lower-case letters"),
        ({"providers": {"p": {"base_url": "ftp://x"}}}, "providers.p.base_url: must be an http://"),
    ],
)
def test_a_text_key_off_its_pattern_says_what_it_must_be_never_the_regex(raw, said):
    """Words, not a regular expression; and never the value, which may hold a password."""
    problems = project_problems(raw)
    assert problems.startswith(said), problems
    assert "pattern" not in problems
    assert "Secr3tPw0rd" not in problems


def test_describe_validation_error_counts_the_problems_beyond_five():
    """A file full of typos gives five problems and the count of the rest."""
    problems = config_problems({f"typo{n}": 1 for n in range(8)})
    assert problems.count("unknown key") == 5
    assert problems.endswith("; and 3 more")


def test_describe_validation_error_names_the_top_level():
    """A file that is not a table at all is reported at '(top level)'."""
    assert config_problems("schedule").startswith("(top level): ")


def test_describe_validation_error_names_a_section_of_the_wrong_type():
    """`limits = "4/hour"` (instead of a [limits] table) names `limits`."""
    assert config_problems({"limits": "4/hour"}).startswith("limits: ")


# the project configuration, agentops.toml


def test_an_empty_agentops_toml_gives_the_defaults():
    """No defaults, every notification kind, 10 MiB logs kept 5 times, files for state."""
    config = ProjectConfig.model_validate({})
    assert config.defaults == Defaults()
    assert config.notify.webhooks == []
    assert config.notify.on == [
        "failure",
        "circuit_open",
        "escalated",
        "stale",
        "budget",
        "slow",
        "recovered",
    ]
    assert config.notify.manual_runs is True
    assert (config.logs.max_size, config.logs.keep) == (10 * 1024 * 1024, 5)
    assert config.store.url is None
    assert (config.providers, config.models) == ({}, {})


def test_agentops_toml_values_are_parsed():
    """Sizes, durations, providers and models read as typed values."""
    config = ProjectConfig.model_validate(
        {
            "notify": {"webhooks": ["https://hooks.example.org/x"], "cooldown": "30m"},
            "logs": {"max_size": "1MB", "keep": 2},
            "providers": {"oa": {"base_url": "https://api.example.org/v1", "api_key_env": "OA"}},
            "models": {"small": {"provider": "oa", "name": "s-1", "input_usd_per_mtok": 0.5}},
        }
    )
    assert config.notify.cooldown == 1800.0
    assert config.logs.max_size == 1_000_000
    assert config.providers["oa"].api_key_env == "OA"
    assert config.models["small"].name == "s-1"
    assert not config.models["small"].priced  # the output price is missing


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"colour": 1}, "colour"),
        ({"defaults": {"schedule": "@daily"}}, "defaults.schedule"),
        ({"defaults": {"limits": {"rn": 1}}}, "defaults.limits.rn"),
        ({"notify": {"webhook": []}}, "notify.webhook"),
        ({"logs": {"rotate": 1}}, "logs.rotate"),
        ({"store": {"path": "x"}}, "store.path"),
        ({"providers": {"oa": {"base_url": "https://x.org", "key": "k"}}}, "providers.oa.key"),
        (
            {
                "providers": {"oa": {"base_url": "https://x.org"}},
                "models": {"m": {"provider": "oa", "name": "m", "cost": 1}},
            },
            "models.m.cost",
        ),
    ],
)
def test_an_unknown_key_in_agentops_toml_is_an_error_naming_it(raw, key):
    """A typo anywhere in agentops.toml is refused by its dotted path."""
    assert project_problems(raw) == f"unknown key '{key}'"


def test_a_model_naming_an_unknown_provider_is_refused():
    """`provider = "nope"` in [models.m] is refused, naming the model and the provider."""
    problems = project_problems({"models": {"m": {"provider": "nope", "name": "gpt"}}})
    assert problems == "(top level): model 'm' names unknown provider 'nope'"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"providers": {"oa": {"base_url": "ftp://x.org"}}}, "providers.oa.base_url"),
        ({"notify": {"webhooks": ["hooks.example.org"]}}, "notify.webhooks.0"),
        ({"providers": {"oa": {"base_url": "https://x", "api_key_env": "MY KEY"}}}, "api_key_env"),
        ({"store": {"url": "mysql://db"}}, "store.url"),
        ({"notify": {"on": ["failure", "lunch"]}}, "notify.on.1"),
        ({"logs": {"max_size": "10"}}, "logs.max_size"),
        ({"logs": {"keep": True}}, "logs.keep"),
    ],
)
def test_bad_values_in_agentops_toml_are_refused_by_key(raw, key):
    """A URL that is not http(s), a key variable with spaces, an unknown kind: named."""
    assert key in project_problems(raw)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('statement_timeout = "0s"', "must be longer than zero"),
        ('lock_timeout = "2d"', "a wait on the store can be at most a day"),
        ("keepalives_count = 0", "greater than or equal to 1"),
        ('connect_timeout = "soon"', "expected a duration"),
        ("idle_timeout = 5", "idle_timeout"),
    ],
)
def test_a_bad_bound_is_a_configuration_error(project, toml, problem):
    """A wait of zero, past a day, or not a duration, is refused at load (78), naming the key."""
    (project.home / "agentops.toml").write_text(f"[store]\n{toml}\n")
    with pytest.raises(ConfigError) as info:
        _ = AgentopsProject(project.home).config
    assert info.value.exit_code == 78
    assert problem in info.value.message


# merge_defaults


def agent_with_defaults(defaults: dict, agent: dict) -> AgentConfig:
    """The agent's config as the project reads it: agent.toml over agentops.toml's [defaults]."""
    return AgentConfig.model_validate(merge_defaults(Defaults.model_validate(defaults), agent))


def test_defaults_apply_where_the_agent_says_nothing():
    """A timeout and a whole [limits] section from [defaults] reach an agent that sets neither."""
    config = agent_with_defaults({"timeout": "5m", "limits": {"runs": "4/hour"}}, {})
    assert config.timeout == 300.0
    assert config.limits.runs == Rate(4, 3600.0, "4/hour")


def test_defaults_merge_key_by_key_inside_a_section():
    """An agent setting [limits] runs keeps the default cost cap beside it."""
    config = agent_with_defaults(
        {"limits": {"runs": "4/hour", "cost_usd_per_day": 5}, "retry": {"attempts": 5}},
        {"limits": {"runs": "1/hour"}, "retry": {"max": "2m"}},
    )
    assert config.limits.runs == Rate(1, 3600.0, "1/hour")
    assert config.limits.cost_usd_per_day == 5.0
    assert (config.retry.attempts, config.retry.initial, config.retry.max) == (5, 1.0, 120.0)


def test_the_agent_wins_over_the_defaults():
    """A value in agent.toml replaces the default; a list replaces the default list whole."""
    config = agent_with_defaults(
        {"timeout": "5m", "permissions": {"hosts": ["a.example.org", "b.example.org"]}},
        {"timeout": "1m", "permissions": {"hosts": ["c.example.org"]}},
    )
    assert config.timeout == 60.0
    assert config.permissions.hosts == ["c.example.org"]


def test_defaults_not_written_are_not_applied():
    """Only keys [defaults] sets are merged: a section's own defaults stay the agent's."""
    merged = merge_defaults(Defaults.model_validate({"retry": {"attempts": 5}}), {})
    assert merged == {"retry": {"attempts": 5}}
    assert merge_defaults(Defaults(), {"timeout": "1m"}) == {"timeout": "1m"}


def test_merging_does_not_change_the_agents_own_table():
    """The agent.toml dict is read, not modified, by merging."""
    agent = {"limits": {"runs": "1/hour"}}
    merge_defaults(Defaults.model_validate({"limits": {"cost_usd_per_day": 5}}), agent)
    assert agent == {"limits": {"runs": "1/hour"}}


def test_a_merged_config_is_validated_as_a_whole():
    """A default initial wait above the agent's own max is refused once merged."""
    merged = merge_defaults(
        Defaults.model_validate({"retry": {"initial": "30s"}}), {"retry": {"max": "10s"}}
    )
    assert config_problems(merged) == "retry: max must not be shorter than initial"
