"""Cron's own command line (``agentops --home DIR run NAME --scheduled``) runs without click.

It reads every line it takes exactly as the click command would, ends the
same way (exit code, one line on stderr), and hands every other line to click
unchanged (agentops.cli._cron_line).
"""

from __future__ import annotations

import errno
import gc
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentops.cli import main
from agentops.cli._cron_line import CronLine, parse, run_cron_line
from agentops.errors import UnknownAgent
from agentops.model.outcome import Outcome
from agentops.model.status import ExitCode, RunStatus


class FakeRun:
    """``run_agent`` replaced: remembers how it was called, then ends as ``ending`` says."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, str, dict[str, object], object]] = []
        self.ending = failed

    def __call__(self, project, name, *, overrides=None, options=None):
        # Each path reads the clock when its command starts: the same option, not the same value.
        assert options.tick is not None, "a run claims the tick of when its command started"
        self.calls.append((project.home, name, dict(overrides or {}), options._replace(tick=None)))
        return self.ending(name)


def failed(name: str) -> Outcome:
    """A run that failed: not quiet, so both paths say its line."""
    return Outcome(
        agent=name,
        run_id="20261122T031000Z-abcdef",
        status=RunStatus.FAILED,
        exit_code=ExitCode.FAILED,
        message=f"{name}: failed: ValueError: no",
        log_path=Path("/srv/logs") / f"{name}.jsonl",
    )


@pytest.fixture
def fake_run(monkeypatch, capsys):
    """run_agent faked for both paths; the fast path's gc.freeze() kept out of pytest's process."""
    del capsys  # requested first, so the streams restored below are its own
    fake = FakeRun()
    monkeypatch.setattr("agentops.run.runner.run_agent", fake)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # a closed pipe replaces them: put them back
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    return fake


def through_click(fake: FakeRun, argv: list[str], environ: dict[str, str]):
    """What the click command does with ``argv``: the run it asks for, exit code, output."""
    fake.calls.clear()
    result = CliRunner().invoke(main, argv, env={"AGENTOPS_HOME": environ.get("AGENTOPS_HOME")})
    return fake.calls[:], result.exit_code, result.stdout, result.stderr


def through_cron_line(fake: FakeRun, argv: list[str], environ: dict[str, str], capsys):
    """The same, through the fast path (which must take the line)."""
    fake.calls.clear()
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        run_cron_line(argv, environ)
    out = capsys.readouterr()
    return fake.calls[:], int(ended.value.code), out.out, out.err


def run_words(home: str, a_file: str) -> list[str]:
    """What may follow ``run`` (and a few things that must not)."""
    return [
        *["hello", "hello", "other", "--scheduled", "--dry-run"],
        *["-p", "--param", "k=v", "k=", " k = v ", "k=a=b", "=v", " =v", "nokey"],
        *["--param=k=w", "--param=", "-pk=v", "--", "-", "-h", "--help", "--params-json", "{}"],
        *["--home", home, f"--home={home}", a_file, "--scheduled=1", "--dry"],
    ]


@st.composite
def command_lines(draw, home: str, a_file: str) -> list[str]:
    """Lines as cron writes them (with -p), the same with one word amiss, and soup."""
    homes = [[], ["--home", home], [f"--home={home}"]]
    odd_homes = [
        ["--home", str(Path(home) / "missing")],
        ["--home", a_file],
        ["--home", ""],
        ["--home="],
        ["--home", home, "--home", home],
        ["--home"],
        ["--version"],
        ["-h"],
        ["--scheduled"],
    ]
    pair = st.sampled_from(["k=v", "k=", " k = v ", "k=a=b", "a=1", "=v", " =v", "nokey", "-p"])
    unit = st.one_of(
        st.sampled_from([["--scheduled"], ["--dry-run"]]),
        st.tuples(st.sampled_from(["-p", "--param"]), pair).map(list),
        pair.map(lambda value: [f"--param={value}"]),
    )
    odd_unit = st.sampled_from(
        [[word] for word in ["--dry", "--scheduled=1", "-pk=v", "--", "-", "-h", "other", "-p"]]
        + [["--params-json", "{}"], ["--home", home], ["--param"]]
    )
    units = [["hello"], *draw(st.lists(unit, max_size=4))]
    if draw(st.booleans()):
        units.append(draw(odd_unit))
    before = draw(st.sampled_from(homes + homes + odd_homes))
    cron = [*before, "run", *[word for u in draw(st.permutations(units)) for word in u]]
    words = run_words(home, a_file)
    soup = draw(st.lists(st.sampled_from([*words, "run", "status"]), max_size=6))
    return draw(st.sampled_from([cron, cron, cron, soup]))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_line_the_fast_path_takes_reads_as_click_reads_it(
    project, fake_run, capsys, monkeypatch, tmp_path, data
):
    """Same run asked for (home, agent, -p, options), same exit code, same words on stderr."""
    monkeypatch.chdir(tmp_path)  # no agents/ here: a line without a home is refused alike
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    home = str(project.home)
    argv = data.draw(command_lines(home, str(a_file)), label="argv")
    environ = data.draw(
        st.sampled_from([{}, {"AGENTOPS_HOME": home}, {"AGENTOPS_HOME": ""}]), label="environ"
    )
    taken = parse(argv, environ) is not None
    event("taken by the fast path" if taken else "left to click")
    if not taken:
        return  # click's: test_a_line_the_fast_path_does_not_take_goes_to_click
    assert through_cron_line(fake_run, argv, environ, capsys) == through_click(
        fake_run, argv, environ
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "hello"], CronLine(None, "hello", {}, dry_run=False, scheduled=False)),
        (
            ["--home", "HOME", "run", "hello", "--scheduled"],
            CronLine(Path("HOME"), "hello", {}, dry_run=False, scheduled=True),
        ),
        (
            [
                "--home=HOME",
                "run",
                "--dry-run",
                "hello",
                "-p",
                " a = 1",
                "--param=b=x=y",
                "-p",
                "a=2",
            ],
            CronLine(Path("HOME"), "hello", {"a": "2", "b": "x=y"}, dry_run=True, scheduled=False),
        ),
    ],
)
def test_the_crontab_forms_are_taken(project, argv, expected):
    """``[--home DIR] run NAME`` with --scheduled, --dry-run and -p/--param, in any order."""
    argv = [word.replace("HOME", str(project.home)) for word in argv]
    if expected.home is not None:
        expected = expected._replace(home=project.home)
    assert parse(argv, {}) == expected


def test_the_home_comes_from_the_environment_as_click_reads_it(project):
    """$AGENTOPS_HOME when --home is not given; an empty one is unset."""
    assert parse(["run", "hello"], {"AGENTOPS_HOME": str(project.home)}).home == project.home
    assert parse(["run", "hello"], {"AGENTOPS_HOME": ""}).home is None
    other = project.home / "agents"
    assert parse(["--home", str(other), "run", "hello"], {"AGENTOPS_HOME": "x"}).home == other


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["run"],
        ["--home", "HOME", "run", "--scheduled"],
        ["--home", "HOME", "run", "hello", "--params-json", '{"name": "x"}'],
        ["--home", "HOME", "run", "hello", "-p", "nokey"],
        ["--home", "HOME", "status", "hello"],
        ["--home", "HOME/missing/agents", "run", "hello", "--bogus"],
    ],
)
@pytest.mark.usefixtures("fake_run")
def test_a_line_the_fast_path_does_not_take_goes_to_click(project, capsys, monkeypatch, argv):
    """main() hands it, as it is, to the click group: what it prints and its exit code."""
    argv = [word.replace("HOME", str(project.home)) for word in argv]
    assert parse(argv, {}) is None
    expected = CliRunner().invoke(main, argv, prog_name="agentops")
    monkeypatch.setattr(sys, "argv", ["agentops", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(prog_name="agentops")
    out = capsys.readouterr()
    assert (ended.value.code or 0, out.out, out.err) == (
        expected.exit_code,
        expected.stdout,
        expected.stderr,
    )


def test_a_shell_asking_for_completion_goes_to_click(project):
    """Completion is click's: the line is not taken, whatever it is."""
    argv = ["--home", str(project.home), "run", "hello"]
    assert parse(argv, {"_AGENTOPS_COMPLETE": "bash_complete"}) is None
    assert parse(argv, {"_AGENTOPS_COMPLETE": ""}) is not None


@pytest.mark.parametrize(
    "raised",
    [
        UnknownAgent("unknown agent 'hello'", agent="hello"),
        RuntimeError("boom"),
        KeyboardInterrupt(),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
    ],
    ids=["agentops-error", "bug", "ctrl-c", "closed-pipe"],
)
def test_a_run_that_raises_ends_as_the_click_command_ends(project, fake_run, capsys, raised):
    """One line and its exit code, an internal error, 'aborted', a quiet exit 1: the same."""

    def raising(_name):
        raise raised

    fake_run.ending = raising
    argv = ["--home", str(project.home), "run", "hello"]
    fast = through_cron_line(fake_run, argv, {}, capsys)
    assert fast == through_click(fake_run, argv, {})
    assert fast[1] != ExitCode.OK


def skipped(name: str) -> Outcome:
    """A run skipped by policy: quiet, exit 75 (or $AGENTOPS_SKIP_EXIT_CODE)."""
    return failed(name)._replace(
        status=RunStatus.SKIPPED, exit_code=ExitCode.SKIPPED, message=f"{name} is paused"
    )


@pytest.mark.parametrize(("value", "code"), [(None, 75), ("0", 0), ("3", 3), ("x", 78)])
def test_the_skip_exit_code_is_read_alike(project, fake_run, capsys, monkeypatch, value, code):
    """$AGENTOPS_SKIP_EXIT_CODE: the same exit code (or the same refusal) either way."""
    if value is not None:
        monkeypatch.setenv("AGENTOPS_SKIP_EXIT_CODE", value)
    fake_run.ending = skipped
    argv = ["--home", str(project.home), "run", "hello"]
    fast = through_cron_line(fake_run, argv, {}, capsys)
    assert fast == through_click(fake_run, argv, {})
    assert fast[1] == code
    if code == ExitCode.CONFIG:
        assert fast[0] == [], "a wrong value runs nothing"


def test_main_is_the_click_group_for_everything_else():
    """Tests, the help walk and the docs use main as the group itself."""
    assert isinstance(main, click.Group)
    assert "run" in main.list_commands(click.Context(main))
    assert main.name == "main"
