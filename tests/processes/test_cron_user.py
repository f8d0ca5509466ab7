"""The real cron daemon, running an ordinary user's agent that needs a key from its env file.

Issue 19, defects 2 and 6, end to end as a new operator met them:

- a model key set in the user's shell only: ``check`` finds it missing from
  the environment cron will give the run, and ``cron --install`` refuses;
- the key put in ``agents/<name>/.env``: ``check`` passes, the block is
  installed, and the real daemon runs the agent as the user, the key in its
  environment and in none of its files;
- root running the agent in the user's home is refused, writing nothing,
  and the user's next cron run succeeds as before.

The test makes the user (and removes it, its crontab and its home after).
It needs root, Debian's cron and a Python the user may run: the suite's own
if the user can reach it, else the system's of the same version with the
suite's packages on ``PYTHONPATH``; missing any, it is skipped (failed under
CI). It waits for cron's next minute: up to two.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import agentops
from suite import remember
from system import ensure_tool, give_up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a user and start cron"),
]

KEY = "sk-cronUserEnvFileKey-Wombat5-Pistachio88"
SHELL_KEY = "sk-cronUserShellOnlyKey-Wombat5-Pistachio88"
CRON_TICK_S = 150  # a bound on a hang, not a measure: cron runs a * * * * * line each minute

MODELS = """\
[providers.local]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "LOCAL_LLM_API_KEY"

[models.small]
provider = "local"
name = "small-1"
"""

NIGHTLY = """\
import os
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    runs: int

def run(params: Params, ctx: Context) -> Result:
    key = os.environ["LOCAL_LLM_API_KEY"]  # the run refused to start without it
    ctx.state["key_length"] = len(key)
    ctx.state["user"] = os.environ.get("LOGNAME")
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    ctx.log.info("key.used", key=key)
    return Result(runs=ctx.state["runs"])
"""


@pytest.fixture
def user():
    """A new ordinary user with a home of its own under /tmp; gone again afterwards."""
    ensure_tool("crontab", package="cron")
    name = f"aocron{os.getpid() % 100000}"
    home = Path(tempfile.mkdtemp(prefix="agentops-cron-user-", dir="/tmp"))
    made = subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", "-U", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        give_up(f"useradd failed: {made.stderr.strip()}")
    account = pwd.getpwnam(name)
    os.chown(home, account.pw_uid, account.pw_gid)
    home.chmod(0o755)
    try:
        yield account
    finally:
        subprocess.run(["crontab", "-r", "-u", name], capture_output=True, check=False)
        subprocess.run(["userdel", name], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def python_for(account: pwd.struct_passwd) -> tuple[str, str | None]:
    """An interpreter ``account`` may run with agentops importable, and the PYTHONPATH it needs."""
    source = str(Path(agentops.__file__).resolve().parent.parent)
    candidates = [(sys.executable, None)]
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if Path(system).exists():
        candidates.append((system, os.pathsep.join([source, *site.getsitepackages()])))
    for python, path in candidates:
        probe = as_user(account, [python, "-c", "import agentops.cli"], pythonpath=path)
        if probe.returncode == 0:
            return python, path
    # A checkout in a directory only root may enter (mktemp -d): the base
    # interpreter, with agentops and what it needs copied where the user may read.
    copy = readable_copy(Path(account.pw_dir) / "python")
    for python in (getattr(sys, "_base_executable", sys.executable), system):
        probe = as_user(account, [python, "-c", "import agentops.cli"], pythonpath=copy)
        if probe.returncode == 0:
            return python, copy
    return give_up(f"no Python {account.pw_name} may run with agentops importable")


def readable_copy(target: Path) -> str:
    """agentops and the distributions it needs (not its extras), copied into ``target``."""
    target.mkdir(mode=0o755)
    shutil.copytree(Path(agentops.__file__).resolve().parent, target / "agentops")
    todo, seen = ["agentops"], set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        dist = importlib.metadata.distribution(name)
        needed = map(Requirement, dist.requires or ())
        todo += [r.name for r in needed if r.marker is None or r.marker.evaluate({"extra": ""})]
        if name == "agentops":
            continue  # its source is copied above (an editable install has no files here)
        for file in dist.files or ():
            if file.parts[0] == ".." or file.suffix == ".pyc":
                continue
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), destination)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return str(target)


def as_user(
    account: pwd.struct_passwd,
    command: list[str],
    *,
    pythonpath: str | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """``command`` as ``account``, in a login-like bare environment (and ``extra``)."""
    environ = {
        "HOME": account.pw_dir,
        "LOGNAME": account.pw_name,
        "USER": account.pw_name,
        "PATH": "/usr/bin:/bin",
        **({"PYTHONPATH": pythonpath} if pythonpath else {}),
        **extra,
    }
    assignments = [f"{name}={value}" for name, value in environ.items()]
    result = subprocess.run(
        ["runuser", "-u", account.pw_name, "--", "env", "-i", *assignments, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )
    remember(f"as {account.pw_name}: {' '.join(command)}", result.stdout, result.stderr)
    return result


def give(path: Path, account: pwd.struct_passwd) -> None:
    for item in [path, *path.rglob("*")]:
        os.chown(item, account.pw_uid, account.pw_gid)


def write_crontab(account: pwd.struct_passwd, text: str) -> None:
    """Install ``text`` as the user's crontab (root may: ``crontab -u``)."""
    crontab = Path(account.pw_dir) / "crontab.txt"
    crontab.write_text(text)
    subprocess.run(["crontab", "-u", account.pw_name, str(crontab)], check=True)
    crontab.unlink()


def user_project(account: pwd.struct_passwd) -> Path:
    """The user's project: one agent, every minute, whose model needs $LOCAL_LLM_API_KEY."""
    home = Path(account.pw_dir) / "project"
    agent = home / "agents" / "nightly"
    agent.mkdir(parents=True)
    (home / "agentops.toml").write_text(MODELS)
    (agent / "agent.toml").write_text('schedule = "* * * * *"\n\n[llm]\nmodel = "small"\n')
    (agent / "agent.py").write_text(NIGHTLY)
    give(Path(account.pw_dir), account)
    return home


def wait_for_a_run_started_after(state: Path, moment: datetime) -> dict:
    """The state once cron has run the agent from a start after ``moment`` (bounded wait)."""
    deadline = time.monotonic() + CRON_TICK_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            found = json.loads(state.read_text())
            started = datetime.fromisoformat(found["last_run"]["started_at"])
            if started > moment and found["last_run"]["status"]:
                return found
        time.sleep(1)
    pytest.fail(f"cron did not run the agent within {CRON_TICK_S}s")


@pytest.mark.usefixtures("cron_daemon")
def test_cron_runs_a_users_agent_with_its_env_file_and_root_cannot_break_it(user):
    """Shell-only key: check and install refuse; .env: cron runs it as the user; root is refused."""
    python, pythonpath = python_for(user)
    home = user_project(user)
    agent = home / "agents" / "nightly"
    # The user's crontab: mail off, and what this Python needs (a crontab variable).
    write_crontab(user, 'MAILTO=""\n' + (f"PYTHONPATH={pythonpath}\n" if pythonpath else ""))

    def agentops_as_user(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [python, "-m", "agentops", "--home", str(home), *args]
        return as_user(user, command, pythonpath=pythonpath, **extra)

    # 1. The key in the shell only: what cron would run fails, so check and install say so.
    checked = agentops_as_user("check", LOCAL_LLM_API_KEY=SHELL_KEY)
    assert checked.returncode == 78, checked.stdout + checked.stderr
    assert "$LOCAL_LLM_API_KEY is not set for local in the environment cron runs it with" in (
        checked.stdout
    )
    assert "note: cron runs none of the 1 scheduled agent(s)" in checked.stdout
    refused = agentops_as_user("cron", "--install", LOCAL_LLM_API_KEY=SHELL_KEY)
    assert refused.returncode == 78
    assert "cron --install refused" in refused.stderr

    # 2. The key in the agent's env file: check passes, the block goes in, cron runs it.
    env_file = agent / ".env"
    env_file.write_text(
        textwrap.dedent(f"""\
        # the model's key, for every run however it starts
        LOCAL_LLM_API_KEY="{KEY}"
    """)
    )
    env_file.chmod(0o600)
    give(agent, user)
    checked = agentops_as_user("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Once by hand, before cron may run it: its state and log are the user's when root comes.
    by_hand = agentops_as_user("run", "nightly")
    assert by_hand.returncode == 0, by_hand.stderr
    installed = agentops_as_user("cron", "--install")
    assert installed.returncode == 0, installed.stderr
    # cron notices a changed crontab by its mtime, in whole seconds: written again a second later.
    time.sleep(1.1)
    listed = ["crontab", "-l", "-u", user.pw_name]
    write_crontab(user, subprocess.run(listed, capture_output=True, text=True, check=True).stdout)

    # 3. Root runs it in the user's home (before cron does, so that cron's next
    # minute shows both): refused, naming both, writing nothing.
    roots = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
    as_root = subprocess.run(
        [python, "-m", "agentops", "--home", str(home), "run", "nightly"],
        env={**roots, "PYTHONPATH": pythonpath} if pythonpath else roots,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    refused_at = datetime.now(UTC)
    remember("root runs a user's agent", as_root.stdout, as_root.stderr)
    assert as_root.returncode == 78
    assert f"{home} belongs to {user.pw_name}, and agentops runs as root" in as_root.stderr
    assert [str(p) for p in home.rglob("*") if p.lstat().st_uid == 0] == []

    # 4. The user's cron run after it: the key in its environment, in none of its files.
    state = wait_for_a_run_started_after(home / "state" / "nightly.json", refused_at)
    assert state["last_run"]["status"] == "succeeded", state["last_run"]
    assert state["data"]["key_length"] == len(KEY)
    assert state["data"]["user"] == user.pw_name
    written = (
        "".join(
            path.read_text(errors="replace")
            for path in (home / "state").glob("*")
            if path.is_file()
        )
        + (home / "logs" / "nightly.jsonl").read_text()
    )
    assert KEY not in written, "the env file's value is in no file agentops wrote"
    assert '"key":"[REDACTED]"' in written.replace(" ", "")
    assert [str(p) for p in home.rglob("*") if p.lstat().st_uid == 0] == []
