"""``ctx``: everything an agent's code may touch during a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    import httpx
    from pydantic import BaseModel

    from agentops._infra.log import EventLogger
    from agentops.guards.facade import RunGuards
    from agentops.guards.ticket import Ticket
    from agentops.llm.client import LLMClient
    from agentops.memory.run import RunMemory

__all__ = ["Context"]


class Context:
    """Handed to ``run(params, ctx)`` and to the agent's hooks.

    - ``ctx.state``: the agent's own persistent dict of JSON values. Changes are
      saved only when the run succeeds, like a transaction.
    - ``ctx.action(name, key, do, undo=...)``: a side effect done at most once per
      ``(name, key)``, across runs and crashes.
    - ``ctx.spend(usd=..., tokens=...)``: record a cost before incurring it.
    - ``ctx.step(label)``: count a step of a loop, against ``steps_per_run``.
    - ``ctx.http``: an httpx client whose every call is logged, timed and redacted.
    - ``ctx.llm``: the model client (``ctx.llm.complete(...)``), guarded by the
      budgets, retries and ``[permissions]`` of the run.
    - ``ctx.memory``: working memory with a time to live (``remember``,
      ``recall``, ``forget``) and long-term notes (``note``, ``relevant``),
      kept like ``ctx.state``: only when the run succeeds.
    - ``ctx.log``: a structured logger bound to the agent and the run id, with
      structlog's interface (``ctx.log.info("feed.read", items=12)``, ``bind``).
    - ``ctx.params``: the run's validated Params (None before they are checked).
    - ``ctx.run_id``, ``ctx.now`` (the run's start, UTC), ``ctx.dry_run``.
    - ``ctx.home``: the project directory; resolve relative paths against it.
    - ``ctx.agent``: the agent's name.
    """

    def __init__(
        self,
        *,
        agent: str,
        run_id: str,
        now: datetime,
        home: Path,
        state: dict[str, Any],
        log: EventLogger,
        dry_run: bool = False,
        params: BaseModel | None = None,
        guards: RunGuards | None = None,
        http_transport: httpx.BaseTransport | None = None,
        llm: Callable[[Context], LLMClient] | None = None,
        memory: Callable[[], RunMemory] | None = None,
    ) -> None:
        """Made by the runner, once per run; ``llm`` and ``memory`` make theirs on first use."""
        self.agent = agent
        self.run_id = run_id
        self.now = now
        self.home = home
        self.state = state
        self.log = log
        self.dry_run = dry_run
        self.params = params
        self._guards = guards
        self._http_transport = http_transport
        self._http: httpx.Client | None = None
        self._make_llm = llm
        self._llm: LLMClient | None = None
        self._make_memory = memory
        self._memory: RunMemory | None = None

    def action(
        self,
        name: str,
        key: object,
        do: Callable[[], Any] | Callable[[Ticket], Any],
        *,
        undo: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run the side effect ``do()`` at most once per ``(name, key)``; return its result.

        ``do`` may take one argument, the action's :class:`~agentops.Ticket`:
        ``ticket.idempotency_key`` (the same for every attempt at this action,
        on any run or host) and ``ticket.fencing_token`` (larger for every new
        lease), to send to an external system that can refuse a repeated or
        stale write. The lease is checked again right before ``do`` starts.

        Before ``do()`` an intent is journaled (fsynced), after it a commit with
        ``do()``'s JSON result. A ``(name, key)`` committed before is not run
        again: its recorded result is returned. ``undo(result)`` is called, newest
        first, when the run's output is rejected. In a dry run ``do()`` is not
        called and None is returned.
        """
        return self._run_guards.action(name, key, do, undo=undo)

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost *before* incurring it; a spend that would pass a cap ends the run."""
        self._run_guards.spend(usd=usd, tokens=tokens)

    def step(self, label: str | None = None) -> None:
        """Count one step of a loop; more than ``[limits] steps_per_run`` ends the run."""
        self._run_guards.step(label)

    @property
    def http(self) -> httpx.Client:
        """The run's logged httpx client, made on first use."""
        if self._http is None:
            from agentops._infra.http import make_http_client  # noqa: PLC0415 - httpx is slow to import

            self._http = make_http_client(
                self.log,
                transport=self._http_transport,
                before_request=self._guards.admit_request if self._guards else None,
            )
        return self._http

    @property
    def llm(self) -> LLMClient:
        """The run's model client, made on first use (see :mod:`agentops.llm.client`)."""
        if self._llm is None:
            if self._make_llm is None:
                raise RuntimeError("this Context belongs to no run: ctx.llm needs agentops run")
            self._llm = self._make_llm(self)
        return self._llm

    @property
    def memory(self) -> RunMemory:
        """The run's working memory and long-term notes (see :mod:`agentops.memory.run`)."""
        if self._memory is None:
            if self._make_memory is None:
                raise RuntimeError("this Context belongs to no run: ctx.memory needs agentops run")
            self._memory = self._make_memory()
        return self._memory

    @property
    def memory_used(self) -> RunMemory | None:
        """``ctx.memory`` if the agent has touched it, else None (nothing of it changed)."""
        return self._memory

    def restart(self, state: dict[str, Any]) -> None:
        """Start an attempt afresh: ``ctx.state`` is ``state``, memory as the run loaded it.

        Replies to the prompts an earlier attempt sent are replayed, not paid for again.
        """
        self.state = state
        if self._memory is not None:
            self._memory.rewind()
        if self._llm is not None:
            self._llm._rewind()  # noqa: SLF001 - the run's own handle on ctx.llm

    @property
    def _run_guards(self) -> RunGuards:
        if self._guards is None:
            raise RuntimeError("this Context belongs to no run: ctx.action needs agentops run")
        return self._guards

    def close(self) -> None:
        """Release what the run opened; threads it left running can no longer use the guards."""
        if self._guards is not None:
            self._guards.close()
        if self._llm is not None:
            self._llm._close()  # noqa: SLF001 - the run's own handle on ctx.llm
            self._llm = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._memory is not None:
            self._memory.close()
