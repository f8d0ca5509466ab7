"""The services one invocation runs with, assembled once: log, redactor, clock, store...

Everything a run, an operator's edit or a notification needs from its
surroundings is in one :class:`RunServices` bundle, made by
:meth:`RunServices.assemble` from the project and the caller's
:class:`~agentops.run.options.RunOptions`, and handed on whole instead of a
handful of constructor arguments each.

Assembling is where a run becomes the home's: a user other than the home's
owner is refused before anything is written, and the agent's env files
(:mod:`agentops.project.envfile`) join the environment, their values known
to the redactor, however the run was started.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import Redactor
from agentops.errors import ConfigError
from agentops.project.home import check_agent_name
from agentops.project.schedule import cron_zone
from agentops.run.options import new_run_id
from agentops.store import open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    import httpx

    from agentops._infra.clock import Clock
    from agentops._infra.fs import FileSystem
    from agentops._infra.log import EventLogger
    from agentops.notify.notifier import Notifier
    from agentops.project.config import AgentConfig
    from agentops.project.home import Project
    from agentops.run.options import RunOptions
    from agentops.store import Store

__all__ = ["LOG_STDOUT_ENV", "RunServices", "log_to_stdout"]

LOG_STDOUT_ENV = "AGENTOPS_LOG_STDOUT"
"""Set to 1: every line of an agent's log is also written to stdout (a container's log)."""

_YES, _NO = frozenset({"1", "true", "yes", "on"}), frozenset({"", "0", "false", "no", "off"})


def log_to_stdout(environ: Mapping[str, str]) -> bool:
    """Whether ``$AGENTOPS_LOG_STDOUT`` asks for the log on stdout too; ConfigError if unclear."""
    raw = environ.get(LOG_STDOUT_ENV, "").strip().lower()
    if raw in _YES | _NO:
        return raw in _YES
    raise ConfigError(f"{LOG_STDOUT_ENV}={raw!r} is neither 1 nor 0 (nor true or false)")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunServices:
    """One invocation's services, for one agent and one run id."""

    project: Project
    name: str
    """The agent's name (checked: paths are built from it)."""
    run_id: str
    options: RunOptions
    """What the caller asked for (a dry run, a console, started by cron...)."""
    environ: Mapping[str, str]
    """The environment the run sees, env files included: its secrets are learnt by the redactor."""
    redactor: Redactor
    sink: RunLogSink
    """The agent's log file (and console); closed at the end of the invocation."""
    log: EventLogger
    """The logger bound to the agent and the run id."""
    store: Store
    fs: FileSystem
    clock: Clock
    sleep: Callable[[float], None]
    http_transport: httpx.BaseTransport | None
    """The transport of every HTTP client of the run (tests fake it)."""

    @classmethod
    def assemble(cls, project: Project, name: str, options: RunOptions) -> RunServices:
        """Check the name (before any path is built from it) and the user, then set up the rest.

        Raises :class:`~agentops.errors.ConfigError`, before anything is
        written, for a user the home does not allow or an env file it cannot read.
        """
        check_agent_name(name)
        project.check_writer()
        declared = project.agent_env(name)
        run_id = new_run_id(options.clock())
        if options.scheduled and options.zone is None:
            # Cron's zone, read before the env files join the environment: a TZ in
            # one is the agent's, and must not move its schedule (status reads $TZ).
            started_with = os.environ if options.environ is None else options.environ
            options = options._replace(zone=cron_zone(started_with))
        if options.environ is None:  # the process's own: the agent's code reads os.environ
            os.environ.update(declared)
            environ: Mapping[str, str] = os.environ
        else:
            environ = {**options.environ, **declared}
        redactor = Redactor(environ)
        # A model's key, and whatever an env file holds, is a secret whatever its name.
        keys = [environ.get(p.api_key_env or "") for p in project.config.providers.values()]
        keys += declared.values()
        redactor.add(form for key in keys if key for form in (key, key.strip()))
        fs = options.fs or project.filesystem()
        if fs.owner is not None:
            # Root in another's home (allowed): Python would leave a __pycache__ of
            # root's in the agent's folder, that its owner could not clean.
            sys.dont_write_bytecode = True
        logs = project.config.logs
        sink = RunLogSink(
            project.log_path(name),
            console=options.console,
            fs=fs,
            max_size=logs.max_size,
            keep=logs.keep,
            stdout=log_to_stdout(environ),
        )
        log = make_logger(sink, clock=options.clock, redactor=redactor, agent=name, run_id=run_id)
        if options.dry_run:  # every line of a dry run says so
            log = log.bind(dry_run=True)
        return cls(
            project=project,
            name=name,
            run_id=run_id,
            options=options,
            environ=environ,
            redactor=redactor,
            sink=sink,
            log=log,
            store=options.store or open_store(project, environ=environ, fs=fs),
            fs=fs,
            clock=options.clock,
            sleep=options.sleep,
            http_transport=options.http_transport,
        )

    @property
    def dry_run(self) -> bool:
        """A dry run: no action performed, no state saved, every log line marked."""
        return self.options.dry_run

    @property
    def log_path(self) -> Path:
        """The agent's log file."""
        return self.project.log_path(self.name)

    def notifier(self, agent: AgentConfig | None = None) -> Notifier:
        """The project's notifications, sent and remembered for this agent.

        ``agent`` is its agent.toml, when it could be read: its own check (``[notify] ping``)
        and its ``expected_duration``.
        """
        from agentops.notify.notifier import Notifier  # noqa: PLC0415 - only projects that notify

        return Notifier(
            self.project.config.notify,
            self.store,
            clock=self.clock,
            log=self.log,
            redactor=self.redactor,
            transport=self.http_transport,
            agent=agent,
        )

    def own_log(self) -> EventLogger:
        """A logger of the run writing through a log file of its own: for a forked process."""
        logs = self.project.config.logs
        sink = RunLogSink(self.log_path, fs=self.fs, max_size=logs.max_size, keep=logs.keep)
        return make_logger(
            sink, clock=self.clock, redactor=self.redactor, agent=self.name, run_id=self.run_id
        )

    def close(self) -> None:
        """Close the log (what is logged after this reopens it)."""
        self.sink.close()
