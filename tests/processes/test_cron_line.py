"""Cron's own command line, in real processes: no click imported, and it ends as click's would.

The reading of each line, in-process, is tests/cli/test_cron_line.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from agentops.model.status import ExitCode
from suite import AGENTOPS, cron_env


def test_a_crontab_line_runs_without_click(project, tmp_path):
    """The real process: the run happens, prints nothing, click is never imported.

    What agentops loaded is frozen out of the garbage collector's sight, which
    collects the agent's objects as ever.
    """
    project.add_agent("hello")
    seen = tmp_path / "seen.json"
    probe = (
        "import atexit, gc, json, os, sys\n"
        "def seen():\n"
        "    facts = {'click': 'click' in sys.modules, 'frozen': gc.get_freeze_count() > 0,\n"
        "             'collecting': gc.isenabled()}\n"
        "    open(os.environ['SEEN'], 'w').write(json.dumps(facts))\n"
        "atexit.register(seen)\n"
        "from agentops.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "--home", str(project.home), "run", "hello", "--scheduled"],
        env=cron_env(project.home, SEEN=str(seen)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert json.loads(seen.read_text()) == {"click": False, "frozen": True, "collecting": True}
    state = json.loads((project.home / "state" / "hello.json").read_text())
    assert state["metrics"]["runs"] == 1


RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")

FAILS = """
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    pass

class Result(BaseModel):
    pass

def run(params: Params, ctx: Context) -> Result:
    raise ValueError("no")
"""


@pytest.mark.parametrize(
    ("name", "code", "exit_code"),
    [
        ("hello", None, ExitCode.OK),
        ("nosuch", "", ExitCode.CONFIG),
        ("../up", "", ExitCode.USAGE),
        ("fails", FAILS, ExitCode.FAILED),
    ],
    ids=["succeeds", "unknown", "bad-name", "fails"],
)
def test_the_real_process_ends_alike_either_way(project, name, code, exit_code):
    """A crontab line, and the same line click reads (it takes --params-json): same ending."""
    if code != "":
        project.add_agent(name, *([code] if code else []))
    line = [str(AGENTOPS), "--home", str(project.home), "run", name, "--scheduled"]
    endings = []
    for argv in (line, [*line, "--params-json", "{}"]):
        done = subprocess.run(
            argv,
            env=cron_env(project.home),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        endings.append((done.returncode, done.stdout, RUN_ID.sub("RUN", done.stderr)))
        shutil.rmtree(project.home / "state", ignore_errors=True)  # each starts afresh
    assert endings[0] == endings[1]
    assert endings[0][0] == exit_code
