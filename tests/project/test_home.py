import pytest

from agentops.errors import ConfigError, UnknownAgent, UsageError
from agentops.project.home import Project, check_agent_name
from agentops.project.units import Rate

BAD_NAMES = ["../x", "a/b", "", "Hello", "-x", "_x", "my agent", ".", "..", "x\n", "/etc"]


@pytest.fixture
def home(project):
    """The library's Project for the conftest project's home."""
    return Project.locate(project.home)


# check_agent_name


@pytest.mark.parametrize("name", ["hello", "a", "0day", "my-agent_2"])
def test_check_agent_name_accepts_lowercase_digits_dash_underscore(name):
    """Lowercase letters, digits, '-' and '_', starting with a letter or digit, are names."""
    assert check_agent_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_agent_name_refuses_paths_and_odd_names(name):
    """Paths, empty names, uppercase, a leading dash and spaces are usage errors (exit 2)."""
    with pytest.raises(UsageError, match="invalid agent name") as caught:
        check_agent_name(name)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["../outside", "Outside"])
def test_a_bad_name_is_refused_before_any_path_is_read(project, home, name):
    """A bad name is a usage error even where the path built from it holds an agent.toml."""
    for directory in [project.home / "outside", project.home / "agents" / "Outside"]:
        directory.mkdir()
        (directory / "agent.toml").write_text('description = "not an agent"\n')
    with pytest.raises(UsageError) as caught:
        home.agent(name)
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError):
        home.log_path(name)


# Project.locate


def test_locate_without_agents_dir_is_a_config_error(tmp_path):
    """A home with no agents/ directory is a configuration error (exit 78) naming the place."""
    with pytest.raises(ConfigError) as caught:
        Project.locate(tmp_path)
    assert caught.value.exit_code == 78
    assert f"no agents/ directory in {tmp_path}" in caught.value.message
    assert "--home" in caught.value.message


def test_locate_refuses_an_agents_file(tmp_path):
    """A file called `agents` is not an agents/ directory."""
    (tmp_path / "agents").write_text("")
    with pytest.raises(ConfigError, match="no agents/ directory"):
        Project.locate(tmp_path)


def test_locate_defaults_to_the_current_directory(project, monkeypatch):
    """With no home given, the current directory is the project, made absolute."""
    monkeypatch.chdir(project.home)
    assert Project.locate().home == project.home
    monkeypatch.chdir(project.home.parent)
    assert Project.locate(project.home.name).home == project.home


def test_project_paths_are_under_home(home):
    """State and logs live under the home, one log file per agent."""
    assert home.state_dir == home.home / "state"
    assert home.log_path("hello") == home.home / "logs" / "hello.jsonl"


# Project.agent


def test_agent_reads_and_validates_agent_toml(project, home):
    """A good agent.toml gives the agent's directory and its typed configuration."""
    directory = project.add_agent(
        "hello",
        toml="""
        description = "Says hello"
        schedule = "*/15 * * * *"
        timeout = "30s"

        [params]
        name = "world"

        [limits]
        runs = "4/hour"
        """,
    )
    spec = home.agent("hello")
    assert spec.name == "hello"
    assert spec.directory == directory
    assert spec.code_path == directory / "agent.py"
    assert spec.config.schedule == "*/15 * * * *"
    assert spec.config.timeout == 30.0
    assert spec.config.params == {"name": "world"}
    assert spec.config.limits.runs == Rate(count=4, period_s=3600.0, text="4/hour")


def test_a_byte_order_mark_in_agent_toml_is_fine(project, home):
    """An editor's BOM at the start of agent.toml is not a TOML error."""
    directory = project.add_agent("hello")
    (directory / "agent.toml").write_bytes(b'\xef\xbb\xbf[params]\nname = "bom"\n')
    assert home.agent("hello").config.params == {"name": "bom"}


def test_an_unknown_agent_is_a_config_error_naming_it(project, home):
    """A name with no agents/<name>/agent.toml is UnknownAgent (exit 78), naming the file."""
    (project.home / "agents" / "half").mkdir()  # a directory alone is not an agent
    for name in ["nobody", "half"]:
        with pytest.raises(UnknownAgent) as caught:
            home.agent(name)
        assert caught.value.exit_code == 78
        assert isinstance(caught.value, ConfigError)
        assert f"unknown agent '{name}'" in caught.value.message
        assert str(project.home / "agents" / name / "agent.toml") in caught.value.message


def test_bad_toml_is_a_config_error_naming_the_file_and_line(project, home):
    """A TOML syntax error names agent.toml and the line it is on."""
    directory = project.add_agent("hello", toml='schedule = "@daily"\ntimeout = \n')
    with pytest.raises(ConfigError) as caught:
        home.agent("hello")
    message = caught.value.message
    assert caught.value.exit_code == 78
    assert message.startswith(f"{directory / 'agent.toml'}: bad TOML: ")
    assert "line 2" in message
    assert "\n" not in message


def test_an_unknown_key_is_a_config_error_naming_it(project, home):
    """A typo in agent.toml is named with the file, also inside a section."""
    directory = project.add_agent("hello", toml='scheduel = "@daily"\n[limits]\nrn = "4/hour"\n')
    with pytest.raises(ConfigError) as caught:
        home.agent("hello")
    message = caught.value.message
    assert message.startswith(f"{directory / 'agent.toml'}:3: ")  # the first problem's line
    assert "unknown key 'scheduel'" in message
    assert "unknown key 'limits.rn'" in message


def test_a_bad_value_is_a_config_error_naming_the_key(project, home):
    """A schedule cron would refuse is reported with its key and the file."""
    directory = project.add_agent("hello", toml='schedule = "every day"\n')
    with pytest.raises(ConfigError) as caught:
        home.agent("hello")
    assert caught.value.message.startswith(f"{directory / 'agent.toml'}:1: schedule: ")


def test_a_non_utf8_agent_toml_is_a_config_error_naming_the_file(project, home):
    """An agent.toml saved in Latin-1 is a configuration error, not a crash."""
    directory = project.add_agent("hello")
    (directory / "agent.toml").write_bytes('description = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        home.agent("hello")
    assert caught.value.exit_code == 78
    assert caught.value.message.startswith(f"{directory / 'agent.toml'}: ")


# Project.agents


def test_agents_returns_good_specs_and_one_error_per_broken_agent(project, home):
    """Every agent that reads is listed; each broken one, even a badly named one, is an error."""
    project.add_agent("good", toml='schedule = "@daily"\n')
    project.add_agent("also-good")
    project.add_agent("broken", toml="schedule = \n")
    project.add_agent("typo", toml='scheduel = "@daily"\n')
    project.add_agent("Upper")
    (project.home / "agents" / "notes").mkdir()  # no agent.toml: not an agent

    specs, problems = home.agents()

    assert [spec.name for spec in specs] == ["also-good", "good"]
    assert all(isinstance(problem, ConfigError) for problem in problems)
    assert all(problem.exit_code == 78 for problem in problems)
    assert len(problems) == 3
    messages = sorted(problem.message for problem in problems)
    agents_dir = project.home / "agents"
    assert messages[0].startswith(f"{agents_dir / 'Upper'}: invalid agent name 'Upper'")
    assert messages[1].startswith(f"{agents_dir / 'broken' / 'agent.toml'}: bad TOML")
    assert messages[2].startswith(f"{agents_dir / 'typo' / 'agent.toml'}:1: unknown key 'scheduel'")


def test_agents_of_an_empty_project_is_empty(home):
    """A project with no agents has nothing to list and nothing wrong."""
    assert home.agents() == ([], [])
