"""``agentops check``: everything that would stop an agent from running, found before cron does.

For the project and each agent: agentops.toml and agent.toml valid (schedules
included), agent.py importable with a ``run`` and hooks of the right
signatures, ``[params]`` valid for its ``Params``, every ``[llm]`` model known
with its provider's key in the environment (and priced, when a USD cap is
set), and the crontab block of this home in step with the schedules.

Each problem is one line naming the file (and the line, where there is one).
Importing agent code runs it, so each import is bounded by the agent's timeout.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError

from agentops._infra.files import CONFIG_FILE_LIMIT, read_regular
from agentops.errors import AgentOpsError, ConfigError

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
    crontab_block: str | None = None,
    expected_block: str | None = None,
) -> list[Problem]:
    """Every problem found in the project; none means every agent can run.

    ``crontab_block`` is this home's block as installed (None: none is), and
    ``expected_block`` what ``agentops cron --install`` would write now.
    """
    problems: list[Problem] = []
    try:
        project.config  # noqa: B018 - reading it is the check
    except ConfigError as exc:
        return [_from_error(project, None, project.config_path, exc)]
    for name in project.agent_names():
        problems += _check_agent(project, name, environ)
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


def _check_agent(project: Project, name: str, environ: Mapping[str, str]) -> list[Problem]:
    toml_path = project.home / "agents" / name / "agent.toml"
    try:
        spec = project.agent(name)
    except AgentOpsError as exc:
        return [_from_error(project, name, toml_path, exc)]
    problems = _check_llm(project, spec, environ)
    try:
        code = _import(spec)
    except AgentOpsError as exc:
        return [*problems, _from_error(project, name, spec.code_path, exc)]
    from agentops.run.loader import unknown_params  # noqa: PLC0415

    typos = unknown_params(code.params_model, spec.config.params)
    for key in typos:
        problems.append(
            Problem(
                name,
                _rel(project, toml_path),
                _line_of(toml_path, key),
                f"[params] {key}: unknown param",
            )
        )
    if not typos:
        try:
            code.params_model.model_validate(spec.config.params)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                key = ".".join(str(part) for part in error["loc"]) or "params"
                problems.append(
                    Problem(
                        name,
                        _rel(project, toml_path),
                        _line_of(toml_path, key.split(".")[0]),
                        f"[params] {key}: {error['msg']}",
                    )
                )
        except Exception as exc:  # noqa: BLE001 - a validator of the agent's raised
            problems.append(Problem(name, _rel(project, toml_path), None, f"[params]: {exc}"))
    return problems


def _check_llm(project: Project, spec: AgentSpec, environ: Mapping[str, str]) -> list[Problem]:
    from agentops.llm.routes import problems  # noqa: PLC0415 - what every run checks too

    toml_path = spec.directory / "agent.toml"
    where = (spec.name, _rel(project, toml_path), _line_of(toml_path, "model"))
    return [Problem(*where, problem) for problem in problems(spec.config, project.config, environ)]


def _import(spec: AgentSpec) -> AgentCode:
    from agentops.guards.interrupts import RunInterrupts, StopRun  # noqa: PLC0415
    from agentops.run.loader import load_agent  # noqa: PLC0415

    try:
        with RunInterrupts(spec.config.timeout) as interrupts, interrupts.armed():
            return load_agent(spec)
    except StopRun as stop:
        raise ConfigError(
            f"{spec.code_path}: importing it passed the timeout ({stop.reason})", agent=spec.name
        ) from None


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


def _line_of(path: Path, key: str) -> int | None:
    # The first line that sets ``key``: good enough to point a person at it.
    try:
        raw = read_regular(path, limit=CONFIG_FILE_LIMIT, follow_links=True) or b""
        lines = raw.decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((number for number, line in enumerate(lines, 1) if pattern.match(line)), None)
