"""Import ``agents/<name>/agent.py`` and find what the runner needs in it.

An agent module defines ``run(params: Params, ctx: Context) -> Result``, where
``Params`` and ``Result`` are pydantic models read from the annotations, and
optionally ``validate(result, ctx)`` and ``rollback(result, ctx)``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from agentops._infra.files import check_regular
from agentops._infra.fs import describe
from agentops.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import ModuleType

    from agentops.project.home import AgentSpec

__all__ = ["HOOKS", "AgentCode", "load_agent", "unknown_params"]

HOOKS = {
    "validate": ("result", "ctx"),
    "rollback": ("output", "ctx"),
    "fallback": ("params", "ctx", "error"),
    "apply": ("result", "ctx"),
    "reconcile": ("action", "key", "ctx"),
}
"""Optional module-level functions an agent may define besides ``run``, with what they are given."""


class AgentCode(NamedTuple):
    """An imported agent: its ``run`` function, its models and its optional hooks."""

    module: ModuleType
    run: Callable[..., Any]
    params_model: type[BaseModel]
    result_model: type[BaseModel]
    hooks: dict[str, Callable[..., Any]]

    def hook(self, name: str) -> Callable[..., Any] | None:
        """The optional hook called ``name`` (one of :data:`HOOKS`), if the agent defines it."""
        return self.hooks.get(name)


def load_agent(spec: AgentSpec) -> AgentCode:
    """Import the agent's code; :class:`ConfigError` says what is wrong with it."""
    path = spec.code_path
    try:  # a FIFO there would be waited on by the import, forever
        present = check_regular(path, follow_links=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {describe(exc)}", agent=spec.name) from exc
    if not present:
        raise ConfigError(f"{path}: missing: every agent needs an agent.py", agent=spec.name)
    module_name = f"agentops_agent_{spec.name.replace('-', '_')}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported", agent=spec.name)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    # Helper modules beside agent.py import as they would in a script.
    sys.path.insert(0, str(spec.directory))
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # sys.exit() at import is a broken agent too
        del sys.modules[module_name]
        where = _error_line(exc, str(path))
        raise ConfigError(
            f"{path}{where}: cannot import: {type(exc).__name__}: {exc}", agent=spec.name
        ) from exc
    return _inspect(module, spec)


def _inspect(module: ModuleType, spec: AgentSpec) -> AgentCode:
    path = spec.code_path
    run = getattr(module, "run", None)
    if not callable(run):
        raise ConfigError(f"{path}: defines no run(params, ctx) function", agent=spec.name)
    if _not_plain(run):
        raise ConfigError(
            f"{_at(path, run)}: run() must be a plain function: async def and generators are "
            "not supported",
            agent=spec.name,
        )
    usage = "write def run(params: Params, ctx: Context) -> Result with pydantic models"
    parameters = list(inspect.signature(run).parameters.values())
    try:
        params_model = _annotation(run, parameters[0].name) if parameters else None
        result_model = _annotation(run, "return")
    except Exception as exc:
        raise ConfigError(
            f"{_at(path, run)}: run()'s annotations cannot be resolved ({exc}); {usage}",
            agent=spec.name,
        ) from exc
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if (
        len(parameters) != 2  # noqa: PLR2004 - (params, ctx)
        or any(p.kind not in positional for p in parameters)
        or not _is_model(params_model)
        or not _is_model(result_model)
    ):
        raise ConfigError(
            f"{_at(path, run)}: run() has the wrong signature; {usage}", agent=spec.name
        )
    hooks = {}
    for name, arguments in HOOKS.items():
        hook = getattr(module, name, None)
        # Only the agent's own functions: `from jsonschema import validate` is no hook.
        if hook is None or (callable(hook) and not _defined_in(hook, spec.directory)):
            continue
        _check_hook(hook, name, arguments, spec)
        hooks[name] = hook
    return AgentCode(
        module=module, run=run, params_model=params_model, result_model=result_model, hooks=hooks
    )


def _check_hook(hook: object, name: str, arguments: tuple[str, ...], spec: AgentSpec) -> None:
    # A hook that cannot take what it is given fails at load (78), before run()
    # does anything, not as a rejected output the breaker would count.
    path = spec.code_path
    if not callable(hook) or _not_plain(hook):
        raise ConfigError(
            f"{_at(path, hook)}: {name} must be a plain function, not async def or a generator",
            agent=spec.name,
        )
    try:
        inspect.signature(hook).bind(*arguments)
    except TypeError:
        raise ConfigError(
            f"{_at(path, hook)}: {name}() takes the wrong arguments: "
            f"write def {name}({', '.join(arguments)})",
            agent=spec.name,
        ) from None
    except ValueError:  # no signature to read (a builtin): it is called as it is
        pass


def _at(path: Path, function: object) -> str:
    # ``agent.py:12``: the line of its def, as a compiler names where a problem is.
    code = getattr(function, "__code__", None)
    return f"{path}:{code.co_firstlineno}" if code is not None else str(path)


def _not_plain(function: Callable[..., Any]) -> bool:
    return (
        inspect.iscoroutinefunction(function)
        or inspect.isgeneratorfunction(function)
        or inspect.isasyncgenfunction(function)
    )


def _defined_in(hook: object, directory: Path) -> bool:
    module = sys.modules.get(getattr(hook, "__module__", None) or "")
    source = getattr(module, "__file__", None)
    return source is not None and Path(source).resolve().is_relative_to(directory.resolve())


def _annotation(function: Callable[..., Any], name: str) -> object:
    # Only Params and Result are needed, so an annotation such as Context that
    # the agent imports under TYPE_CHECKING does not have to resolve.
    annotation = function.__annotations__.get(name)
    if isinstance(annotation, str):
        return eval(annotation, function.__globals__)  # noqa: S307 - the agent's own annotation
    return annotation


def _is_model(value: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _error_line(exc: BaseException, filename: str) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno and exc.filename == filename:
        return f":{exc.lineno}"
    import traceback  # noqa: PLC0415 - only for an agent that fails to import

    frames = traceback.extract_tb(exc.__traceback__)
    line = next((frame.lineno for frame in reversed(frames) if frame.filename == filename), None)
    return f":{line}" if line else ""


def unknown_params(model: type[BaseModel], values: Mapping[str, Any]) -> list[str]:
    """The keys of ``values`` the Params ``model`` does not know (none if it takes extras)."""
    if model.model_config.get("extra") == "allow":
        return []
    known = set(model.model_fields)
    known |= {f.alias for f in model.model_fields.values() if f.alias}
    known |= {
        f.validation_alias
        for f in model.model_fields.values()
        if isinstance(f.validation_alias, str)
    }
    return sorted(key for key in values if key not in known)
