"""``agentops check``: everything that would stop an agent from running, found before cron does.

For the project and each agent: agentops.toml and agent.toml valid (schedules
included), the env files readable, agent.py importable with a ``run`` and
hooks of the right signatures, its tools described (a docstring, a type
on every parameter), ``[params]`` valid for its ``Params``, every
``[llm]`` model known with its provider's key in the environment (and
priced, when a USD cap is set), and the crontab block of this home in step
with the schedules.

A scheduled agent is judged in the environment cron will run it with (the
crontab's variables and its env files), not in the shell ``check`` runs in:
a key set only in the operator's shell would pass here and fail every tick.

Each problem is one line naming the file and, wherever there is one, the line.
Importing agent code runs it, so each import is bounded by the agent's timeout.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError

from agentops._infra.files import CONFIG_FILE_LIMIT, read_regular
from agentops.errors import AgentOpsError, ConfigError
from agentops.ops._tools import tool_problems
from agentops.project.envfile import ENV_FILE, read_env_file
from agentops.project.tomlfile import key_line, validation_problems

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from agentops.project.home import AgentSpec, Project
    from agentops.run.loader import AgentCode

__all__ = ["PROBLEM_KEYS", "Problem", "check_project"]

PROBLEM_KEYS = ("agent", "file", "line", "problem")
"""The keys of each problem ``agentops check --json`` prints."""


class Problem(NamedTuple):
    """One thing that is wrong, and where."""

    agent: str | None
    file: str
    """Relative to the home: ``agents/x/agent.toml``, ``agentops.toml``, ``crontab``."""
    line: int | None
    problem: str

    def __str__(self) -> str:
        """``agents/x/agent.toml:3: schedule: ...``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.problem}"


def check_project(
    project: Project,
    *,
    environ: Mapping[str, str],
    cron_environ: Mapping[str, str] | None = None,
    crontab_block: str | None = None,
    expected_block: str | None = None,
) -> list[Problem]:
    """Every problem found in the project; none means every agent can run.

    ``environ`` is the environment runs by hand start with; ``cron_environ``
    the one cron gives a scheduled run (None: scheduled agents are judged in
    ``environ`` too). ``crontab_block`` is this home's block as installed
    (None: none is), and ``expected_block`` what ``agentops cron --install``
    would write now.
    """
    problems: list[Problem] = []
    try:
        project.config  # noqa: B018 - reading it is the check
    except ConfigError as exc:
        return _from_config_error(project, None, project.config_path, exc)
    shared = project.home / ENV_FILE
    try:
        shared_env = read_env_file(shared)
    except ConfigError as exc:  # said once, not once an agent; the agents are judged without it
        problems.append(_from_error(project, None, shared, exc))
        shared_env = {}
    for name in project.agent_names():
        problems += _check_agent(project, name, environ, cron_environ, shared_env)
    if crontab_block is not None and expected_block is not None and crontab_block != expected_block:
        problems.append(
            Problem(
                None,
                "crontab",
                None,
                "this home's block differs from the schedules: agentops cron --diff shows how, "
                "agentops cron --install brings it in step",
            )
        )
    return problems


def _check_group(project: Project, spec: AgentSpec, text: str) -> list[Problem]:
    # A group without its limit would stop every run of the agent (78).
    group = spec.config.group
    if group is None or group in project.config.groups:
        return []
    toml_path = spec.directory / "agent.toml"
    return [
        Problem(
            spec.name,
            _rel(project, toml_path),
            key_line(text, ("group",)),
            f"group {group!r} is not in agentops.toml's [groups] (add: {group} = N)",
        )
    ]


def _check_agent(
    project: Project,
    name: str,
    environ: Mapping[str, str],
    cron_environ: Mapping[str, str] | None,
    shared_env: Mapping[str, str],
) -> list[Problem]:
    toml_path = project.home / "agents" / name / "agent.toml"
    try:
        spec = project.agent(name)
    except AgentOpsError as exc:
        return _from_config_error(project, name, toml_path, exc)
    own = project.env_paths(name)[1]
    try:
        declared = {**shared_env, **read_env_file(own)}  # as Project.agent_env merges them
    except ConfigError as exc:
        return [_from_error(project, name, own, exc)]
    text = _text(toml_path)
    problems = _check_llm(
        project, spec, text=text, environ=environ, cron_environ=cron_environ, declared=declared
    )
    problems += _check_group(project, spec, text)
    try:
        code = _import(spec)
    except AgentOpsError as exc:
        return [*problems, _from_error(project, name, spec.code_path, exc)]
    from agentops.run.loader import unknown_params  # noqa: PLC0415

    where = (name, _rel(project, toml_path))
    typos = unknown_params(code.params_model, spec.config.params)
    for key in typos:
        problems.append(
            Problem(*where, key_line(text, ("params", key)), f"[params] {key}: unknown param")
        )
    if not typos:
        try:
            code.params_model.model_validate(spec.config.params)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                loc = error["loc"]
                key = ".".join(str(part) for part in loc) or "params"
                line = key_line(text, ("params", *loc))
                problems.append(Problem(*where, line, f"[params] {key}: {error['msg']}"))
        except Exception as exc:  # noqa: BLE001 - a validator of the agent's raised
            problems.append(Problem(*where, key_line(text, ("params",)), f"[params]: {exc}"))
    code_file = _rel(project, spec.code_path)
    listed = spec.config.permissions.tools
    for line, problem in tool_problems(code.module, _text(spec.code_path), listed):
        problems.append(Problem(name, code_file, line, problem))
    return problems


def _check_llm(
    project: Project,
    spec: AgentSpec,
    *,
    text: str,
    environ: Mapping[str, str],
    cron_environ: Mapping[str, str] | None,
    declared: Mapping[str, str],
) -> list[Problem]:
    from agentops.llm.routes import problems  # noqa: PLC0415 - what every run checks too

    by_hand = problems(spec.config, project.config, {**environ, **declared})
    found = by_hand
    if spec.config.schedule is not None and cron_environ is not None:
        found = problems(spec.config, project.config, {**cron_environ, **declared})
    where = (
        spec.name,
        _rel(project, spec.directory / "agent.toml"),
        key_line(text, ("llm", "model")),
    )
    return [
        Problem(
            *where,
            problem
            if problem in by_hand
            else f"{problem} in the environment cron runs it with (only this shell has it): "
            f"put it in {_rel(project, project.env_paths(spec.name)[1])} or .env",
        )
        for problem in found
    ]


def _import(spec: AgentSpec) -> AgentCode:
    from agentops.guards.interrupts import RunInterrupts, StopRun  # noqa: PLC0415
    from agentops.run.loader import load_agent  # noqa: PLC0415

    # check only reads: not even a __pycache__ is left (root checking a user's home).
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        with RunInterrupts(spec.config.timeout) as interrupts, interrupts.armed():
            return load_agent(spec)
    except StopRun as stop:
        raise ConfigError(
            f"{spec.code_path}: importing it passed the timeout ({stop.reason})", agent=spec.name
        ) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode


def _from_config_error(
    project: Project, agent: str | None, path: Path, exc: AgentOpsError
) -> list[Problem]:
    # A file that does not validate: a problem per bad key, each on its line.
    cause = exc.__cause__
    if not isinstance(cause, ValidationError) or not exc.message.startswith(str(path)):
        return [_from_error(project, agent, path, exc)]
    text = _text(path)
    return [
        Problem(agent, _rel(project, path), line, problem)
        for line, problem in validation_problems(cause, text)
    ]


def _from_error(project: Project, agent: str | None, path: Path, exc: AgentOpsError) -> Problem:
    message = exc.message
    line = None
    # Errors name their file first ("/srv/x/agents/a/agent.py:12: ..."): keep the rest.
    head = str(path)
    if message.startswith(head):
        rest = message[len(head) :]
        found = re.match(r":(\d+)", rest)
        if found:
            line = int(found[1])
            rest = rest[found.end() :]
        message = rest.removeprefix(":").strip()
    toml_line = re.search(r"\(at line (\d+), column \d+\)", message)
    if toml_line and line is None:
        line = int(toml_line[1])
    return Problem(agent, _rel(project, path), line, message)


def _rel(project: Project, path: Path) -> str:
    try:
        return str(path.relative_to(project.home))
    except ValueError:
        return str(path)


def _text(path: Path) -> str:
    try:
        return (read_regular(path, limit=CONFIG_FILE_LIMIT, follow_links=True) or b"").decode(
            "utf-8-sig"
        )
    except (OSError, UnicodeDecodeError):
        return ""  # no line to point at: the problem is still said
