"""The tool loop of ``ctx.llm.run()``: the model asks for tools, the run calls them, until done.

Each turn is one request down the chain of models (the conversation kept
whichever model answers), reserved and settled like any call, and one step
(``[limits] steps_per_run``; ``max_steps`` bounds the loop itself). Each
call the model asks for is, in its order:

- refused with an error result if the tool was not offered (a model
  inventing one), counted and logged;
- validated: invalid arguments go back to the model, saying what is wrong;
- performed as its declaration says (:mod:`agentops.llm.tools`): read-only
  at once, an effect as a guarded action (once per key), a destructive one
  only when a human approved it (else the run ends ``held``);
- answered with its result, wrapped as untrusted text; a tool that raises
  answers with its error (redacted), and one failing the same way twice in
  a row ends the run (:class:`~agentops.errors.ToolFailed`).

Every call is one ``llm.tool_call`` line.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agentops.errors import LLMUnavailable, ToolCallHeld, ToolFailed
from agentops.llm._prompt import Malformed, reask
from agentops.llm.tools import REJECTED
from agentops.model.ledger import COMMITTED, UNRESOLVED

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import BaseModel

    from agentops._infra.log import EventLogger
    from agentops._infra.redact import Redactor
    from agentops.guards.facade import RunGuards
    from agentops.llm._replies import Paid
    from agentops.llm.completion import Completion
    from agentops.llm.providers.base import ToolCall
    from agentops.llm.routes import Route
    from agentops.llm.tools import Tool
    from agentops.model.state import Metrics

__all__ = ["ToolLoop"]

_SHOWN_CHARS = 1000
"""The most of a model's arguments that are not JSON the log keeps."""


class ToolLoop:
    """Performs the tool calls of one ``ctx.llm.run()``, and keeps its conversation."""

    def __init__(
        self,
        *,
        agent: str,
        tools: Sequence[Tool],
        guards: RunGuards,
        log: EventLogger,
        redactor: Redactor,
        metrics: Metrics,
        wrap: Callable[[str, str], str],
        context: Callable[[], object],
    ) -> None:
        """``tools``: those offered (already past ``[permissions] tools``); ``wrap``: untrusted."""
        self._agent = agent
        self._tools = {t.name: t for t in tools}
        self._guards = guards
        self._log = log
        self._redactor = redactor
        self._metrics = metrics
        self._wrap = wrap
        self._context = context
        self._failed: dict[str, str] = {}  # a tool's last error, until it succeeds

    def run(
        self,
        messages: list[dict[str, Any]],
        *,
        max_steps: int,
        turn: Callable[[list[dict[str, Any]]], tuple[Route, Paid]],
        accept: Callable[[Route, Paid], Completion],
        refused: Callable[[Route, Paid], None],
        max_reasks: int,
        parsed: bool,
    ) -> Any:
        """Turns until the model answers: its ``parsed`` object, or the Completion of them all.

        ``turn`` sends the conversation down the chain of models; ``accept`` reads
        a final reply (:class:`~agentops.llm._prompt.Malformed`: asked again, up to
        ``max_reasks`` times); ``refused`` raises for a refusal.
        """
        tokens_in = tokens_out = 0
        usd: float | None = 0.0  # None once a turn's model has no prices
        asked = 1
        for step in range(1, max_steps + 1):
            self._guards.step("llm.run")
            route, paid = turn(messages)
            tokens_in += paid.tokens_in
            tokens_out += paid.tokens_out
            usd = None if usd is None or paid.cost_usd is None else usd + paid.cost_usd
            reply = paid.reply
            if reply.refusal is not None:
                refused(route, paid)
            if reply.tool_calls:
                messages.append(
                    {
                        "role": "assistant",
                        "content": reply.text or "",
                        "tool_calls": [
                            {"id": c.id, "name": c.name, "arguments": c.arguments}
                            for c in reply.tool_calls
                        ],
                    }
                )
                messages.extend(self.answer(call, step) for call in reply.tool_calls)
                continue
            try:
                completion = accept(route, paid)
            except Malformed as exc:
                self._log.warning("llm.malformed", model=route.name, ask=asked, error=str(exc))
                if asked > max_reasks:
                    raise LLMUnavailable(f"no valid reply in {asked} asks: {exc}") from None
                asked += 1
                messages.extend(reask(exc.text, str(exc)))
                continue
            if parsed:
                return completion.parsed
            return replace(completion, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=usd)
        return self._guards.stop(
            ToolFailed(
                f"{self._agent}: ctx.llm.run had no answer in max_steps {max_steps} turns",
                agent=self._agent,
            )
        )

    def answer(self, call: ToolCall, step: int) -> dict[str, Any]:
        """The tool message answering ``call``, once performed (or refused)."""
        started = time.perf_counter()
        tool = self._tools.get(call.name)
        logged: dict[str, Any] = {"tool": call.name, "call_id": call.id, "step": step}
        if tool is None:
            self._metrics.tool_calls_unknown += 1
            offered = ", ".join(sorted(self._tools)) or "none"
            return self._told(
                call, logged, started, f"there is no tool {call.name!r} (the tools: {offered})"
            )
        logged["kind"] = tool.kind
        try:
            arguments = tool.validate(call.arguments)
        except ValueError as exc:
            shown = call.arguments  # the model's garbled text may be long: the log keeps its start
            logged["arguments"] = shown[:_SHOWN_CHARS] if isinstance(shown, str) else shown
            return self._told(call, logged, started, f"invalid arguments: {exc}")
        logged["arguments"] = arguments.model_dump(mode="json")
        try:
            result = self._perform(tool, arguments, logged)
        except Exception as exc:  # noqa: BLE001 - a tool's failure goes back to the model
            error = str(self._redactor.value(f"{type(exc).__name__}: {exc}"))
            again = self._failed.get(tool.name) == error
            self._failed[tool.name] = error
            told = self._told(call, logged, started, self._wrap(error, f"tool {tool.name}"))
            if again:  # failing loudly, not looping: the same failure twice ends the run
                self._guards.stop(
                    ToolFailed(
                        f"{self._agent}: tool {tool.name} failed twice in a row: {error}",
                        agent=self._agent,
                    )
                )
            return told
        self._failed.pop(tool.name, None)
        if isinstance(result, dict) and result.get(REJECTED) is True:
            return self._told(
                call, logged, started, f"a human rejected this call: {result.get('reason')}"
            )
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        self._logged(logged, started, ok=True)
        return _message(call, self._wrap(text, f"tool {tool.name}"), is_error=False)

    def _perform(self, tool: Tool, arguments: BaseModel, logged: dict[str, Any]) -> Any:
        ctx = self._context()
        if not tool.effect:
            return tool.call(arguments, ctx)
        # As ctx.action keeps it: a secret in a key is replaced by its digest.
        key = self._redactor.identifier(tool.key(arguments))
        logged["key"] = key
        if tool.confirm:
            entry = self._guards.ledger().get(tool.action, key)
            if entry is None or entry.status not in (COMMITTED, UNRESOLVED):
                self._hold(tool, key, arguments, logged)
            # Approved (its result recorded), rejected, or unknown after a crash
            # (ctx.action stops the run): never performed on the model's word.
            return self._guards.action(tool.action, key, _never)
        return self._guards.action(tool.action, key, lambda: tool.call(arguments, ctx))

    def _hold(self, tool: Tool, key: str, arguments: BaseModel, logged: dict[str, Any]) -> None:
        values = arguments.model_dump(mode="json")
        if self._redactor.value(values) != values:
            # What is held is written to the state file, and performed as written.
            raise ValueError("the arguments of a call held for review may not hold a secret")
        self._log.info("llm.tool_call", **logged, ok=True, held=True, duration_ms=0.0)
        self._guards.stop(
            ToolCallHeld(
                f"{self._agent}: {tool.name} is held for review; see agentops review list "
                f"{self._agent}",
                tool=tool.name,
                key=key,
                arguments=values,
                agent=self._agent,
            )
        )

    def _told(
        self, call: ToolCall, logged: dict[str, Any], started: float, error: str
    ) -> dict[str, Any]:
        self._logged(logged, started, ok=False, error=error)
        return _message(call, f"error: {error}", is_error=True)

    def _logged(self, logged: dict[str, Any], started: float, *, ok: bool, **more: Any) -> None:
        self._metrics.tool_calls += 1
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        self._log.info("llm.tool_call", **logged, ok=ok, duration_ms=duration_ms, **more)


def _message(call: ToolCall, content: str, *, is_error: bool) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": call.id,
        "name": call.name,
        "content": content,
        "is_error": is_error,
    }


def _never() -> None:
    # The ledger said the call was settled; ctx.action returns its result without this.
    raise AssertionError("a held call is performed only by agentops review approve")
