"""The user's project: find the home, name its agents, read their ``agent.toml``.

Nothing here imports agent code: ``list`` and ``cron`` need only TOML.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from agentops.config import AgentConfig, describe_validation_error
from agentops.errors import ConfigError, UnknownAgent, UsageError

__all__ = ["AgentSpec", "Project", "check_agent_name"]

_AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def check_agent_name(name: str) -> str:
    """Return ``name`` if it is a valid agent name, else raise :class:`UsageError`.

    Checked before any path is built from it, so ``../x`` never reaches the disk.
    """
    if not _AGENT_NAME.fullmatch(name):
        raise UsageError(
            f"invalid agent name {name!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


class AgentSpec(NamedTuple):
    """An agent's name, directory and validated configuration."""

    name: str
    directory: Path
    config: AgentConfig

    @property
    def code_path(self) -> Path:
        """``agents/<name>/agent.py``."""
        return self.directory / "agent.py"


class Project(NamedTuple):
    """A home directory holding ``agents/``, ``state/`` and ``logs/``."""

    home: Path

    @classmethod
    def locate(cls, home: str | Path | None = None) -> Project:
        """The project at ``home`` (default: the current directory).

        The CLI resolves ``--home`` and ``$AGENTOPS_HOME`` before calling this.
        """
        root = Path(home if home is not None else Path.cwd()).absolute()
        if not (root / "agents").is_dir():
            raise ConfigError(
                f"no agents/ directory in {root}: pass --home DIR or set AGENTOPS_HOME"
            )
        return cls(root)

    @property
    def state_dir(self) -> Path:
        """Where state files, locks and journals live."""
        return self.home / "state"

    @property
    def logs_dir(self) -> Path:
        """Where the JSON-lines logs live."""
        return self.home / "logs"

    def log_path(self, name: str) -> Path:
        """``logs/<name>.jsonl``."""
        return self.logs_dir / f"{check_agent_name(name)}.jsonl"

    def agent(self, name: str) -> AgentSpec:
        """The agent called ``name``, its ``agent.toml`` read and validated."""
        directory = self.home / "agents" / check_agent_name(name)
        toml_path = directory / "agent.toml"
        try:
            exists = toml_path.is_file()
        except OSError as exc:
            raise ConfigError(f"{toml_path}: cannot read: {exc.strerror}", agent=name) from exc
        if not exists:
            raise UnknownAgent(f"unknown agent {name!r}: there is no {toml_path}", agent=name)
        try:
            # utf-8-sig: a byte-order mark left by an editor is not a TOML error.
            raw = tomllib.loads(toml_path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path}: bad TOML: {exc}", agent=name) from exc
        except OSError as exc:
            raise ConfigError(f"{toml_path}: cannot read: {exc.strerror}", agent=name) from exc
        try:
            config = AgentConfig.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{toml_path}: {describe_validation_error(exc)}", agent=name) from exc
        return AgentSpec(name=name, directory=directory, config=config)

    def agent_names(self) -> list[str]:
        """Names of the directories under ``agents/`` that hold an ``agent.toml``, sorted."""
        agents = self.home / "agents"
        try:
            return sorted(
                entry.name
                for entry in os.scandir(agents)
                if entry.is_dir() and (Path(entry.path) / "agent.toml").is_file()
            )
        except OSError as exc:
            raise ConfigError(f"{agents}: cannot read: {exc.strerror}") from exc

    def agents(self) -> tuple[list[AgentSpec], list[ConfigError]]:
        """Every agent that reads cleanly, and an error for each one that does not."""
        specs: list[AgentSpec] = []
        problems: list[ConfigError] = []
        for name in self.agent_names():
            try:
                specs.append(self.agent(name))
            except UsageError as exc:
                problems.append(ConfigError(f"{self.home / 'agents' / name}: {exc}"))
            except ConfigError as exc:
                problems.append(exc)
        return specs, problems
