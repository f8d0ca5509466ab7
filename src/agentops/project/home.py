"""The user's project: find the home, read ``agentops.toml``, name its agents, read their TOML.

Nothing here imports agent code: ``list``, ``status`` and ``cron`` need only TOML.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from agentops.errors import ConfigError, UnknownAgent, UsageError
from agentops.project.config import (
    AgentConfig,
    ProjectConfig,
    describe_validation_error,
    merge_defaults,
)
from agentops.project.envfile import ENV_FILE, read_env_files
from agentops.project.tomlfile import read_toml, validation_problems

if TYPE_CHECKING:
    from agentops._infra.fs import FileSystem

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
                f"no agents/ directory in {root}: pass --home DIR or set AGENTOPS_HOME "
                "(agentops init NAME makes a new project here)"
            )
        return cls(root)

    @classmethod
    def create(cls, home: str | Path | None = None) -> Project:
        """The project at ``home`` (default: the current directory), made if there is none.

        A new project is its ``agents/`` directory (and the home, if missing):
        ``state/`` and ``logs/`` come with the first run. A home another user
        owns is refused (:meth:`check_writer`), before anything is made.
        """
        root = Path(home if home is not None else Path.cwd()).absolute()
        cls(root).check_writer()
        try:
            (root / "agents").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{root / 'agents'}: cannot create: {exc.strerror}") from exc
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
        raw, text = read_toml(path, agent=None)
        return _validated(ProjectConfig, raw, path, text, agent=None)

    def check_writer(self) -> None:
        """Refuse (:class:`ConfigError`) a user other than the home's owner, unless allowed.

        Called before anything is written: a run, or a command that changes
        the home (see :mod:`agentops.project.owner`).
        """
        from agentops.project.owner import check_writer  # noqa: PLC0415

        check_writer(self.home, self.config.files)

    def filesystem(self) -> FileSystem:
        """The file system seam writing as ``[files]`` says: group-readable, handed to the owner."""
        from agentops._infra.fs import FileSystem  # noqa: PLC0415
        from agentops.project.owner import hand_over_to  # noqa: PLC0415

        return FileSystem(group=self.config.files.mode == "group", owner=hand_over_to(self.home))

    def env_paths(self, name: str) -> tuple[Path, Path]:
        """The agent's env files: the project's ``.env``, then ``agents/<name>/.env``."""
        return self.home / ENV_FILE, self.home / "agents" / check_agent_name(name) / ENV_FILE

    def agent_env(self, name: str) -> dict[str, str]:
        """The variables the agent's env files set, the agent's own overriding the project's.

        Raises :class:`ConfigError` naming the file and line of one it cannot read.
        """
        try:
            return read_env_files(self.env_paths(name))
        except ConfigError as exc:
            raise ConfigError(exc.message, agent=name) from exc

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
            raise UnknownAgent(
                f"unknown agent {name!r}: there is no {toml_path}{self.did_you_mean(name)}",
                agent=name,
            )
        raw, text = read_toml(toml_path, agent=name)
        merged = merge_defaults(self.config.defaults, raw)
        config = _validated(AgentConfig, merged, toml_path, text, agent=name)
        return AgentSpec(name=name, directory=directory, config=config)

    def did_you_mean(self, name: str) -> str:
        """``; did you mean 'x'?`` for the agent named closest to ``name``, or nothing."""
        import difflib  # noqa: PLC0415 - only for a name that is not there

        try:
            names = self.agent_names()
        except ConfigError:
            return ""
        close = difflib.get_close_matches(name, names, n=1)
        return f"; did you mean {close[0]!r}?" if close else ""

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


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], raw: object, path: Path, text: str, *, agent: str | None) -> _M:
    # The error names the line of its first bad key, as a compiler would.
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [line for line, _ in validation_problems(exc, text) if line is not None]
        where = f"{path}:{lines[0]}" if lines else str(path)
        raise ConfigError(f"{where}: {describe_validation_error(exc)}", agent=agent) from exc
