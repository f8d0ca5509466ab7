"""The tools of an agent, as ``agentops check`` finds them, and what is wrong with each.

A tool is a function of ``agent.py`` that is declared with ``@agentops.tool``,
named in ``[permissions] tools``, or given by name in a ``tools=[...]`` of
the module's source (``ctx.llm.run(prompt, tools=[search, reply])``). Each
is judged as ``ctx.llm.run`` will judge it (a docstring, a type on every
parameter), and a name ``[permissions] tools`` lists that no function of the
module holds is a problem too.
"""

from __future__ import annotations

import ast
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["tool_problems"]


def tool_problems(
    module: ModuleType, source: str, listed: list[str] | None
) -> list[tuple[int | None, str]]:
    """``(line, problem)`` for each tool of ``module`` that ``ctx.llm.run`` would refuse."""
    from agentops.llm.tools import MARK, Tool, ToolDeclarationError  # noqa: PLC0415 - pydantic

    names = set(_named_in_tools(source)) | set(listed or ())
    names |= {
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and hasattr(value, MARK)
    }
    found: list[tuple[int | None, str]] = []
    for name in sorted(names):
        function: Any = getattr(module, name, None)
        if function is None:
            if listed is not None and name in listed:
                found.append((None, f"[permissions] tools: {name} is no function of agent.py"))
            continue
        try:
            Tool.of(function)
        except ToolDeclarationError as exc:
            found.append((exc.line, exc.problem))
    return found


def _named_in_tools(source: str) -> list[str]:
    """The names in every ``tools=[...]`` (or tuple) keyword of ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # the import said so already
        return []
    return [
        element.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "tools" and isinstance(keyword.value, ast.List | ast.Tuple)
        for element in keyword.value.elts
        if isinstance(element, ast.Name)
    ]
