"""Tools: plain typed functions of an agent that a model may call (``ctx.llm.run(tools=...)``).

A tool is a function with a docstring (what it does and when to use it)
and a type on every parameter: the JSON Schema the model sees is made from
the signature by pydantic, its description from the docstring, and the
arguments a model sends are validated by the same model before the function
runs. A parameter named ``ctx`` is not shown to the model: the run's
:class:`~agentops.Context` is passed in it.

How far a tool reaches is said where it is declared, with :func:`tool`:

- a bare function (or ``@tool``) is read-only: called whenever the model asks;
- ``@tool(effect=True)`` has a side effect: it runs as a guarded action
  (``ctx.action``), at most once per (tool, key) across retries, runs and
  crashes, the key made from its validated arguments (or the ones ``key=``
  names); the same call again returns the recorded result;
- ``@tool(confirm=True)`` is destructive (an effect that needs a human's
  yes): the call is held for ``agentops review`` and performed only when
  approved.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agentops.llm.providers.base import ToolSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MARK", "REJECTED", "Tool", "ToolDeclarationError", "rejection", "tool"]

REJECTED = "agentops.rejected"
"""The key of the result ``agentops review reject`` records for a held call."""

_F = TypeVar("_F", bound="Callable[..., Any]")

MARK = "__agentops_tool__"
"""The attribute :func:`tool` sets on a function: its :class:`_Declared`."""

CONTEXT_PARAMETER = "ctx"
"""A tool's parameter that receives the run's ``ctx`` instead of an argument of the model."""


@dataclass(frozen=True, slots=True)
class _Declared:
    effect: bool
    confirm: bool
    key: tuple[str, ...] | None


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A tool's name as both APIs take it."""

_PLAIN = _Declared(effect=False, confirm=False, key=None)
"""A bare function: a read-only tool."""


class ToolDeclarationError(ValueError):
    """A function that cannot be offered as a tool (no docstring, an untyped parameter...)."""

    def __init__(self, function: Callable[..., Any], problem: str) -> None:
        """``problem``: what is wrong with ``function``, said after where it is."""
        code = getattr(function, "__code__", None)
        self.file: str | None = code.co_filename if code else None
        self.line: int | None = code.co_firstlineno if code else None
        self.problem = problem
        where = f"{self.file}:{self.line}" if code else getattr(function, "__qualname__", "?")
        super().__init__(f"{where}: {problem}")


@overload
def tool(function: _F, /) -> _F: ...


@overload
def tool(
    *, effect: bool = False, confirm: bool = False, key: str | Sequence[str] | None = None
) -> Callable[[_F], _F]: ...


def tool(
    function: _F | None = None,
    /,
    *,
    effect: bool = False,
    confirm: bool = False,
    key: str | Sequence[str] | None = None,
) -> _F | Callable[[_F], _F]:
    """Declare what a tool may do: ``@tool``, ``@tool(effect=True)``, ``@tool(confirm=True)``.

    ``effect``: the tool changes something outside the run, so it runs at most
    once per key. ``confirm``: it is destructive, so a human approves each
    call (it implies ``effect``). ``key``: the argument (or arguments) naming
    the effect, for the key; by default every argument. The function is
    returned unchanged: it can still be called directly.
    """
    keys = (key,) if isinstance(key, str) else (tuple(key) if key is not None else None)

    def mark(fn: _F) -> _F:
        declared = _Declared(effect=bool(effect or confirm), confirm=bool(confirm), key=keys)
        setattr(fn, MARK, declared)
        return fn

    return mark(function) if function is not None else mark


_MADE: dict[Callable[..., Any], Tool] = {}
"""The tools made, by function: a run is one process, its tools the functions of its module."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A function ready to be offered to a model: its schema, and how far it reaches."""

    name: str
    function: Callable[..., Any]
    description: str
    arguments: type[BaseModel]
    """Validates what the model sends (unknown arguments refused)."""
    effect: bool
    confirm: bool
    key_names: tuple[str, ...] | None
    takes_ctx: bool

    @classmethod
    def of(cls, function: Callable[..., Any]) -> Tool:
        """``function`` as a tool; :class:`ToolDeclarationError` saying where it is not one.

        Made once per function (a loop in a loop asks for the same tools again).
        """
        if isinstance(function, Tool):
            return function
        if not inspect.isfunction(function):
            raise ToolDeclarationError(function, f"a tool is a function, not {function!r:.80}")
        made = _MADE.get(function)
        if made is None:
            made = _MADE[function] = cls._made_of(function)
        return made

    @classmethod
    def _made_of(cls, function: Callable[..., Any]) -> Tool:
        name = function.__name__
        if not _NAME.fullmatch(name):
            raise ToolDeclarationError(
                function, f"tool {name}: a tool's name is 1 to 64 ASCII letters, digits, _ or -"
            )
        description = inspect.getdoc(function)
        if not description:
            raise ToolDeclarationError(function, f"tool {name} has no docstring")
        try:
            hints = typing.get_type_hints(function, include_extras=True)
        except Exception as exc:  # noqa: BLE001 - a name the annotations use is not defined
            raise ToolDeclarationError(function, f"tool {name}'s annotations: {exc}") from None
        fields: dict[str, Any] = {}
        takes_ctx = False
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name == CONTEXT_PARAMETER:
                takes_ctx = True
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise ToolDeclarationError(
                    function, f"tool {name}: *{parameter.name} cannot be described to a model"
                )
            if parameter.name not in hints:
                raise ToolDeclarationError(
                    function, f"tool {name}: parameter {parameter.name} has no type"
                )
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[parameter.name] = (hints[parameter.name], default)
        declared: _Declared = getattr(function, MARK, None) or _PLAIN
        if declared.key is not None and (missing := set(declared.key) - set(fields)):
            raise ToolDeclarationError(
                function, f"tool {name}: key names no parameter {', '.join(sorted(missing))}"
            )
        arguments = create_model(
            f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        return cls(
            name=name,
            function=function,
            description=description,
            arguments=arguments,
            effect=declared.effect,
            confirm=declared.confirm,
            key_names=declared.key,
            takes_ctx=takes_ctx,
        )

    @property
    def kind(self) -> str:
        """``read``, ``effect`` or ``confirm``: how far it reaches, as the log says it."""
        return "confirm" if self.confirm else "effect" if self.effect else "read"

    @property
    def action(self) -> str:
        """The name of its guarded action (in the ledger): ``tool.<name>``."""
        return f"tool.{self.name}"

    def spec(self) -> ToolSpec:
        """What the model is shown."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    def validate(self, arguments: object) -> BaseModel:
        """The model's ``arguments``, validated; ``ValueError`` saying what is wrong."""
        if isinstance(arguments, str):
            raise ValueError("the arguments are not a JSON object (not valid JSON)")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ValueError("the arguments are not a JSON object")
        try:
            return self.arguments.model_validate(arguments)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                    for e in errors[:5]
                )
            ) from None

    def key(self, arguments: BaseModel) -> str:
        """The effect's key: the named arguments, else a digest of them all."""
        values = arguments.model_dump(mode="json")
        if self.key_names is not None:
            return ":".join(str(values[name]) for name in self.key_names)
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def call(self, arguments: BaseModel, ctx: object) -> Any:
        """Call the function with ``arguments`` (and ``ctx``, if it takes it)."""
        given = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.takes_ctx:
            given[CONTEXT_PARAMETER] = ctx
        return self.function(**given)


def rejection(reason: str | None) -> dict[str, Any]:
    """The result recorded for a held call a human rejected: what the model is told."""
    return {REJECTED: True, "reason": reason or "no reason given"}
