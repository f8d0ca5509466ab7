"""The user's project: find the home, read ``agentops.toml``, name its agents, read their TOML.

Nothing here imports agent code: ``list``, ``status`` and ``cron`` need only TOML.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from agentops._infra.files import CONFIG_FILE_LIMIT, read_regular
from agentops.errors import ConfigError, UnknownAgent, UsageError
from agentops.project.config import (
    AgentConfig,
    ProjectConfig,
    describe_validation_error,
    merge_defaults,
)

__all__ = ["AgentSpec", "Project", "check_agent_name"]

_AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
"""At most 100 characters: with its suffixes, a name must stay a file name (255 bytes)."""


def check_agent_name(name: str) -> str:
    """Return ``name`` if it is a valid agent name, else raise :class:`UsageError`.

    Checked before any path is built from it, so ``../x`` never reaches the disk.
    """
    if not _AGENT_NAME.fullmatch(name):
        raise UsageError(
            f"invalid agent name {name[:120]!r}: use at most 100 lowercase letters, digits, "
            "'-' and '_', starting with a letter or digit"
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


class Project:
    """A home directory holding ``agents/``, ``state/``, ``logs/`` and maybe ``agentops.toml``."""

    def __init__(self, home: Path) -> None:
        """The project at ``home`` (an absolute path); see :meth:`locate`."""
        self.home = home

    def __repr__(self) -> str:
        """``Project('/srv/agents')``."""
        return f"Project({str(self.home)!r})"

    def __eq__(self, other: object) -> bool:
        """Projects are equal when they are at the same home."""
        return isinstance(other, Project) and other.home == self.home

    def __hash__(self) -> int:
        """Hash as :meth:`__eq__` compares."""
        return hash(self.home)

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
    def config_path(self) -> Path:
        """``agentops.toml`` at the home."""
        return self.home / "agentops.toml"

    @functools.cached_property
    def config(self) -> ProjectConfig:
        """``agentops.toml``, read and validated once; defaults when there is none."""
        path = self.config_path
        if not path.exists():
            return ProjectConfig()
        raw = _read_toml(path, agent=None)
        try:
            return ProjectConfig.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc

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

    def memory_path(self, name: str) -> Path:
        """``state/<name>.memory.sqlite``: the agent's long-term notes (``ctx.memory.note``)."""
        return self.state_dir / f"{check_agent_name(name)}.memory.sqlite"

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
        raw = _read_toml(toml_path, agent=name)
        try:
            config = AgentConfig.model_validate(merge_defaults(self.config.defaults, raw))
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


def _read_toml(path: Path, *, agent: str | None) -> dict[str, Any]:
    try:
        # Checked first: a FIFO or a device is refused, never waited on.
        raw = read_regular(path, limit=CONFIG_FILE_LIMIT, follow_links=True)
        if raw is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        # utf-8-sig: a byte-order mark left by an editor is not a TOML error.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: bad TOML: {exc}", agent=agent) from exc
    except RecursionError:
        raise ConfigError(f"{path}: bad TOML: nested too deeply", agent=agent) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", agent=agent) from exc
