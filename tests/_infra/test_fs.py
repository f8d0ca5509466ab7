"""The file-system seam: atomic replaces, no write through a planted link, owner-only files.

agentops often runs as root from cron, so a link planted where it writes
(``state/<name>.json.tmp``, ``.lock``, ``logs/<name>.jsonl``) must never make
it write elsewhere. Each link here points at a victim outside the home, and
every test checks the victim is untouched.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

import pytest

from agentops._infra.fs import FileSystem, describe
from agentops.errors import StateError
from agentops.project.home import Project as AgentopsProject
from agentops.run.runner import run_agent
from agentops.store.file import FileStore
from faults import FaultyFileSystem
from suite import agent_source

if TYPE_CHECKING:
    from pathlib import Path

LINK_REFUSED = "it is a symbolic link, and agentops does not read or write through links"

PRECIOUS = "precious: not agentops' to write\n"


@pytest.fixture
def fs() -> FileSystem:
    return FileSystem()


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the home that planted links point at."""
    path = tmp_path / "victim.txt"
    path.write_text(PRECIOUS)
    return path


@pytest.fixture
def no_umask():
    """Clear the umask, so the modes of new files come from agentops alone."""
    old = os.umask(0)
    yield
    os.umask(old)


def plant(link: Path, target: Path) -> Path:
    """A symbolic link at ``link`` pointing at ``target``."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- replace: the old version or the new, never a mix ---------------------------------------

REPLACE_STEPS = [
    ("mkdir", 1),
    ("unlink", 1),  # a .tmp left by a crash, or planted
    ("open", 1),
    ("write", 1),
    ("fsync", 1),
    ("close", 1),
    ("unlink", 2),  # a .bak.tmp left by a crash, or planted
    ("link", 1),  # the old version as .bak.tmp
    ("rename", 1),  # .bak.tmp -> .bak
    ("rename", 2),  # .tmp -> the file: from here on it is the new version
    ("fsync_dir", 1),
]
"""The steps of replacing a file with a backup, in order; the nth call of each."""


def test_a_replace_with_a_backup_takes_these_steps(tmp_path):
    """REPLACE_STEPS is what replace() does, in order, when there is a previous version."""
    path = tmp_path / "x.json"
    path.write_bytes(b"v1")
    fs = FaultyFileSystem()
    fs.replace(path, b"v2", backup=True)
    counted: dict[str, int] = {}
    steps = []
    for step, _subject in fs.trace:
        counted[step] = counted.get(step, 0) + 1
        steps.append((step, counted[step]))
    assert steps == REPLACE_STEPS


def test_replace_keeps_the_previous_version_as_bak(tmp_path, fs):
    """The new bytes are in place, the old ones are the .bak (the same inode), no .tmp is left."""
    path = tmp_path / "x.json"
    fs.replace(path, b"v1", backup=True)
    old_inode = path.stat().st_ino
    fs.replace(path, b"v2", backup=True)
    assert path.read_bytes() == b"v2"
    backup = tmp_path / "x.json.bak"
    assert backup.read_bytes() == b"v1"
    assert backup.stat().st_ino == old_inode  # a link: no copy, no moment without the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.json.bak"]


def test_replace_without_backup_or_durability(tmp_path):
    """Without backup no .bak is made; without durable nothing is fsynced."""
    path = tmp_path / "x.json"
    fs = FaultyFileSystem()
    fs.replace(path, b"v1", durable=False)
    fs.replace(path, b"v2", durable=False)
    assert path.read_bytes() == b"v2"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert fs.calls["fsync"] == fs.calls["fsync_dir"] == 0


@pytest.mark.parametrize(("step", "nth"), REPLACE_STEPS, ids=str)
def test_a_replace_failing_at_any_step_leaves_the_old_or_the_new_version(tmp_path, step, nth):
    """Each step failing leaves the file and its .bak whole; the next replace works."""
    path, backup = tmp_path / "x.json", tmp_path / "x.json.bak"
    FileSystem().replace(path, b"version 1", backup=True)
    FileSystem().replace(path, b"version 2", backup=True)
    fs = FaultyFileSystem(step, nth=nth, error=errno.EIO)

    with pytest.raises(OSError, match="Input/output error"):
        fs.replace(path, b"version 3", backup=True)

    index = REPLACE_STEPS.index((step, nth))
    renamed = index > REPLACE_STEPS.index(("rename", 2))
    backed_up = index > REPLACE_STEPS.index(("rename", 1))
    assert path.read_bytes() == (b"version 3" if renamed else b"version 2")
    assert backup.read_bytes() == (b"version 2" if backed_up else b"version 1")
    assert not (tmp_path / "x.json.tmp").exists()
    assert fs.open_fds == {}  # every descriptor it opened was closed
    FileSystem().replace(path, b"version 4", backup=True)
    assert path.read_bytes() == b"version 4"


# -- create -----------------------------------------------------------------------------------


def test_create_makes_a_file_that_never_exists_without_its_first_bytes(tmp_path, no_umask):  # noqa: ARG001
    """The first bytes go to a temporary file, fsynced, renamed into place; the fd appends."""
    path = tmp_path / "state" / "x.journal"
    fs = FaultyFileSystem()
    fd = fs.create(path, b"one\n")
    fs.write(fd, b"two\n")
    fs.close(fd)
    assert [step for step, _ in fs.trace] == [
        "mkdir",
        "unlink",
        "open",
        "write",
        "fsync",
        "rename",
        "fsync_dir",
        "write",
        "close",
    ]
    assert path.read_bytes() == b"one\ntwo\n"
    assert not path.with_name("x.journal.tmp").exists()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


@pytest.mark.parametrize("step", ["write", "fsync", "rename", "fsync_dir"])
def test_create_that_fails_leaves_no_file_and_no_open_descriptor(tmp_path, step):
    """A step failing: the error is raised, nothing at the path, the temporary file gone."""
    fs = FaultyFileSystem(step, error=errno.EIO)
    path = tmp_path / "x.journal"
    with pytest.raises(OSError, match="Input/output error"):
        fs.create(path, b"one\n")
    assert fs.open_fds == {}
    assert not path.with_name("x.journal.tmp").exists()
    if step != "fsync_dir":
        assert not path.exists()


# -- links planted at the seam --------------------------------------------------------------


def test_replace_refuses_a_link_at_the_target(tmp_path, fs, victim):
    """Replacing a file that is a link raises ELOOP; the link and its target stay as they were."""
    link = plant(tmp_path / "home" / "x.json", victim)
    with pytest.raises(OSError, match="symbolic link") as info:
        fs.replace(link, b"new", backup=True)
    assert info.value.errno == errno.ELOOP
    assert describe(info.value) == LINK_REFUSED
    assert link.is_symlink()
    assert victim.read_text() == PRECIOUS


@pytest.mark.parametrize("name", ["x.json.tmp", "x.json.bak", "x.json.bak.tmp"])
def test_replace_removes_links_at_its_own_files(tmp_path, fs, victim, name):
    """A link at the .tmp, the .bak or the .bak.tmp is replaced by a file, never written through."""
    home = tmp_path / "home"
    path = home / "x.json"
    fs.replace(path, b"old")
    plant(home / name, victim)
    fs.replace(path, b"new", backup=True)
    assert path.read_bytes() == b"new"
    assert (home / "x.json.bak").read_bytes() == b"old"
    assert not any(p.is_symlink() for p in home.iterdir())
    assert victim.read_text() == PRECIOUS


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "to nothing"])
def test_open_read_and_append_refuse_a_link(tmp_path, fs, victim, dangling):
    """Opening, reading or appending through a link is ELOOP; nothing is created at its target."""
    target = tmp_path / "created-by-agentops" if dangling else victim
    link = plant(tmp_path / "home" / "x.jsonl", target)
    for attempt in (
        lambda: fs.open(link, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
        lambda: fs.read(link),
        lambda: fs.create(link, b"x"),
    ):
        with pytest.raises(OSError, match="symbolic link") as info:
            attempt()
        assert info.value.errno == errno.ELOOP
    assert victim.read_text() == PRECIOUS
    assert not (tmp_path / "created-by-agentops").exists()


# -- links planted in a home, met by a run ---------------------------------------------------

AGENT = agent_source(
    """
    ctx.spend(tokens=1)
    ctx.action("post", ctx.run_id, lambda: "done")
    # The files that exist only while a run does: their modes, seen from inside.
    files = {name: ctx.home / "state" / name for name in ("pub.journal", "pub.deadline")}
    ctx.state["modes"] = {n: oct(stat.S_IMODE(p.lstat().st_mode)) for n, p in files.items()}
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return Result(ok=True)
    """,
    result="ok: bool",
    imports="import os, stat",
)

REFUSED = {
    "state/pub.json": "cannot read state",
    "state/pub.ledger.json": "cannot read ledger",
    "state/pub.lock": "cannot open lock",
    "state/pub.journal": "cannot read journal",
}
"""A link at one of these is a clean error: 74, one line saying what is a link."""

REPLACED = [
    "state/pub.json.tmp",
    "state/pub.json.bak",
    "state/pub.json.bak.tmp",
    "state/pub.ledger.json.tmp",
    "state/pub.ledger.json.bak",
    "state/pub.attempt.json.tmp",
    "state/pub.deadline",
]
"""A link at one of these is removed and a file made in its place: the run goes on."""


@pytest.fixture
def home_with_history(project, invoke):
    """A home whose agent has run once: state, ledger and their backups to come."""
    project.add_agent("pub", AGENT)
    assert invoke("run", "pub").exit_code == 0
    return project


def outside_the_home(tmp_path: Path) -> dict[str, bytes]:
    """Every file outside the home, with its bytes: to prove none was written."""
    home = tmp_path / "home"
    return {
        str(p): p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_symlink() and home not in p.parents
    }


@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in REFUSED],
)
def test_a_run_meeting_a_link_at_an_agents_file_stops_with_74(
    home_with_history, invoke, tmp_path, victim, name
):
    """Through the CLI: exit 74, one `agentops:` line naming the link; nothing outside changes."""
    link = home_with_history.home / name
    link.unlink(missing_ok=True)
    plant(link, victim)
    before = outside_the_home(tmp_path)
    result = invoke("run", "pub")
    assert result.exit_code == 74, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"agentops: {link}: {REFUSED[name]}: {LINK_REFUSED}")
    assert outside_the_home(tmp_path) == before
    assert link.is_symlink()


@pytest.mark.parametrize("name", REPLACED)
def test_a_link_at_a_file_agentops_makes_afresh_is_not_followed(
    home_with_history, invoke, tmp_path, victim, name
):
    """The run succeeds without writing through the link, which is gone; its target is untouched."""
    home = home_with_history.home
    (home / name).unlink(missing_ok=True)
    plant(home / name, victim)
    before = outside_the_home(tmp_path)
    result = invoke("run", "pub")
    assert (result.exit_code, result.output) == (0, "")
    assert outside_the_home(tmp_path) == before
    assert not (home / name).is_symlink()
    assert home_with_history.state("pub")["data"]["runs"] == 2


def test_a_link_at_the_last_attempt_is_left_and_the_run_goes_on(home_with_history, invoke, victim):
    """The attempt is not recorded (a warning in the log); the run's outcome is unchanged."""
    attempt = home_with_history.home / "state" / "pub.attempt.json"
    attempt.unlink()
    plant(attempt, victim)
    result = invoke("run", "pub")
    assert (result.exit_code, result.output) == (0, "")
    assert victim.read_text() == PRECIOUS
    [warning] = [e for e in home_with_history.events("pub") if e["event"] == "attempt.not_recorded"]
    assert LINK_REFUSED in warning["error"]


def test_a_link_at_the_log_is_one_line_and_the_run_goes_on(home_with_history, invoke, victim):
    """A log that is a link is not written: one `agentops:` line, exit 0, the state saved."""
    log = home_with_history.log_path("pub")
    log.unlink()
    plant(log, victim)
    result = invoke("run", "pub")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [f"agentops: cannot write the log {log}: {LINK_REFUSED}"]
    assert victim.read_text() == PRECIOUS
    assert home_with_history.state("pub")["data"]["runs"] == 2


def run_in_process(project, clock, **options):
    """One scheduled run an hour after the last, in-process, as the CLI makes it."""
    clock.advance(hours=1)
    return run_agent(
        AgentopsProject(project.home),
        "pub",
        environ={},
        clock=clock,
        exit_on_abandon=True,
        scheduled=True,
        **options,
    )


@pytest.mark.parametrize(("name", "code"), [("pub.tick", 74), ("pub.tick.tmp", 0)])
def test_a_link_at_the_schedules_tick_is_not_followed(project, clock, victim, name, code):
    """A scheduled run meeting a linked tick stops with 74; a linked .tmp is replaced."""
    project.add_agent("pub", AGENT, 'schedule = "@hourly"\n')
    assert run_in_process(project, clock).exit_code == 0
    link = project.home / "state" / name
    link.unlink(missing_ok=True)
    plant(link, victim)
    outcome = run_in_process(project, clock)
    assert outcome.exit_code == code, outcome.message
    if code:
        assert outcome.message == f"{link}: cannot read tick: {LINK_REFUSED}"
    assert victim.read_text() == PRECIOUS


def test_rotating_the_log_never_follows_a_link_at_an_old_log(project, clock, tmp_path):
    """Links at pub.jsonl.1 and .2 are renamed or dropped as links; their targets are untouched."""
    project.add_agent("pub", AGENT)
    (project.home / "agentops.toml").write_text('[logs]\nmax_size = "1KB"\nkeep = 2\n')
    log = project.log_path("pub")
    log.parent.mkdir()
    log.write_text('{"event": "old"}\n' * 100)  # full: the next run rotates it
    victims = {}
    for n in (1, 2):
        victims[n] = tmp_path / f"victim-{n}"
        victims[n].write_text(PRECIOUS)
        plant(log.with_name(f"pub.jsonl.{n}"), victims[n])
    assert run_in_process(project, clock).exit_code == 0
    assert all(v.read_text() == PRECIOUS for v in victims.values())
    assert log.with_name("pub.jsonl.1").read_text() == '{"event": "old"}\n' * 100
    assert log.with_name("pub.jsonl.2").is_symlink()  # the old .1, moved as the link it is
    assert project.event_names("pub")[0] == "run.started"


def test_a_real_run_under_cron_never_writes_through_a_link(project, run_agentops, tmp_path):
    """A real `agentops run` under cron meets links where it writes; nothing outside changes."""
    # First links at every file it makes afresh and at the log (exit 0, one line
    # for the log), then a link at the lock (exit 74, one line).
    project.add_agent("pub", AGENT)
    assert run_agentops("run", "pub").returncode == 0
    victims = {}
    for name in [*REPLACED, "logs/pub.jsonl"]:
        (project.home / name).unlink(missing_ok=True)
        victims[name] = tmp_path / f"victim-{name.replace('/', '-')}"
        victims[name].write_text(PRECIOUS)
        plant(project.home / name, victims[name])
    (project.home / "state" / "pub.deadline").unlink()
    plant(project.home / "state" / "pub.deadline", tmp_path / "created-by-agentops")
    before = outside_the_home(tmp_path)

    result = run_agentops("run", "pub")
    assert result.returncode == 0, result.stderr
    log = project.log_path("pub")
    assert result.stderr.splitlines() == [f"agentops: cannot write the log {log}: {LINK_REFUSED}"]
    assert project.state("pub")["data"]["runs"] == 2

    log.unlink()  # only the lock's line, now
    lock = project.home / "state" / "pub.lock"
    lock.unlink()
    plant(lock, victims["state/pub.json.tmp"])
    result = run_agentops("run", "pub")
    assert result.returncode == 74
    assert result.stderr.splitlines() == [
        f"agentops: {lock}: cannot open lock: {LINK_REFUSED} (log: {log})"
    ]
    assert outside_the_home(tmp_path) == before
    assert not (tmp_path / "created-by-agentops").exists()


# -- owner-only files -----------------------------------------------------------------------


def test_files_and_directories_the_seam_creates_are_owner_only(tmp_path, fs, no_umask):  # noqa: ARG001
    """With umask 0: replace, create and open make 0600 files; mkdir a 0700 directory."""
    fs.replace(tmp_path / "a" / "x.json", b"{}")
    fd = fs.create(tmp_path / "a" / "x.jsonl", b"")
    fs.close(fd)
    fs.close(fs.open(tmp_path / "a" / "x.lock", os.O_RDWR | os.O_CREAT))
    assert {p.name: mode(p) for p in (tmp_path / "a").iterdir()} == {
        "x.json": 0o600,
        "x.jsonl": 0o600,
        "x.lock": 0o600,
    }
    assert mode(tmp_path / "a") == 0o700


def test_mkdir_makes_missing_parents_owner_only_too(tmp_path, fs, no_umask):  # noqa: ARG001
    """Every directory mkdir creates, parents included, is 0700, as its docstring says."""
    fs.mkdir(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / d) for d in ("a", "a/b", "a/b/c")] == [0o700] * 3


def test_every_file_a_run_creates_is_owner_only(project, clock, no_umask):  # noqa: ARG001
    """Every file of a run (state to log) is 0600 with umask 0; state/ and logs/ are 0700."""
    project.add_agent("pub", AGENT)
    for _ in range(2):  # the second run makes the backups
        clock.advance(hours=1)
        outcome = run_agent(
            AgentopsProject(project.home), "pub", environ={}, clock=clock, exit_on_abandon=True
        )
        assert outcome.exit_code == 0, outcome.message
    state = project.state("pub")
    assert state["data"]["modes"] == {"pub.journal": "0o600", "pub.deadline": "0o600"}
    made = {
        str(p.relative_to(project.home)): mode(p)
        for directory in ("state", "logs")
        for p in (project.home / directory).iterdir()
    }
    assert made == {
        "state/pub.json": 0o600,
        "state/pub.json.bak": 0o600,
        "state/pub.ledger.json": 0o600,
        "state/pub.ledger.json.bak": 0o600,
        "state/pub.lock": 0o600,
        "state/pub.attempt.json": 0o600,
        "logs/pub.jsonl": 0o600,
    }
    assert mode(project.home / "state") == mode(project.home / "logs") == 0o700


def test_a_state_error_names_the_link_in_process(project, victim):
    """In-process, the store refuses a linked state file with a StateError (74) naming it."""
    link = plant(project.home / "state" / "pub.json", victim)
    with pytest.raises(StateError) as info:
        FileStore(project.home / "state").load("pub")
    assert info.value.exit_code == 74
    assert info.value.message == f"{link}: cannot read state: {LINK_REFUSED}"
    assert victim.read_text() == PRECIOUS


def test_describe_says_what_a_failed_step_met():
    """ELOOP is named a link; any other error is its strerror."""
    assert describe(OSError(errno.ELOOP, os.strerror(errno.ELOOP))) == LINK_REFUSED
    assert describe(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == os.strerror(errno.ENOSPC)


def test_fsync_dir_refuses_a_directory_that_is_a_link(tmp_path, fs):
    """A directory fsync does not follow a link either (Linux says ENOTDIR, not ELOOP)."""
    real = tmp_path / "real"
    real.mkdir()
    link = plant(tmp_path / "home" / "state", real)
    with pytest.raises(OSError, match=r"Not a directory|symbolic link") as info:
        fs.fsync_dir(link)
    assert info.value.errno in {errno.ELOOP, errno.ENOTDIR}


def test_set_aside_never_overwrites_an_earlier_one(tmp_path):
    """Two files set aside in the same second keep both."""
    fs = FileSystem()
    path = tmp_path / "pub.tick"
    first = second = None
    for content in (b"one", b"two"):
        path.write_bytes(content)
        moved = fs.set_aside(path, why="test")
        first, second = (moved.moved_to, None) if first is None else (first, moved.moved_to)
    assert first is not None
    assert second is not None
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert not path.exists()
