"""One host's ``agentops tick`` at a moment the test chooses: ``python tickhost.py HOME ISO``.

The same :func:`agentops.run.tick.tick` the command calls, in a process of
its own that forks a real child per agent, but with its clock fixed at
``ISO``, so hosts started together tick the same minute whatever the real
time. It prints what it ran as JSON on stdout and exits with the tick's code;
the lines for a human go to stderr, as the command's do. The store is the
one ``$AGENTOPS_STORE_URL`` names.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


def main(home: str, at: str) -> int:
    """Tick ``home`` at ``at``; the tick's exit code."""
    from agentops.project.home import Project  # noqa: PLC0415
    from agentops.run.options import RunOptions  # noqa: PLC0415
    from agentops.run.tick import tick  # noqa: PLC0415

    started = datetime.fromisoformat(at)

    def say(line: str) -> None:
        print(f"agentops: {line}", file=sys.stderr, flush=True)  # noqa: T201 - what cron mails

    options = RunOptions(clock=lambda: started, exit_on_abandon=True)
    report = tick(Project.locate(home), started=started, say=say, options=options)
    print(json.dumps({"ran": report.ran, "due": [d.name for d in report.due]}), flush=True)  # noqa: T201
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
