"""``ctx``: everything an agent's code may touch during a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

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
    from agentops.memory.run import Memory

__all__ = ["Context", "RunResources"]


class RunResources(Protocol):
    """What ``ctx`` is backed by: the run it belongs to, which makes each of these on first use.

    The run keeps them, and what it does with them (restarting an attempt,
    closing them at the end) is its own business: ``ctx`` only hands them on.
    """

    @property
    def guards(self) -> RunGuards:
        """The run's guards (actions, spends, steps)."""

    @property
    def http(self) -> httpx.Client:
        """The run's logged, guarded httpx client."""

    @property
    def llm(self) -> LLMClient:
        """The run's model client."""

    @property
    def memory(self) -> Memory:
        """The run's memory, as its agent sees it."""


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

    That is all of it: what the runner does with a run (restart an attempt,
    close it, keep its memory) it does through the run, not through ``ctx``.
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
        run: RunResources | None = None,
    ) -> None:
        """Made by the runner, once per run, backed by ``run``.

        Without a run (a test of a helper, say) ``ctx.http`` is a plain logged
        client, and what needs a run raises :class:`RuntimeError`.
        """
        self.agent = agent
        self.run_id = run_id
        self.now = now
        self.home = home
        self.state = state
        self.log = log
        self.dry_run = dry_run
        self.params = params
        self._run: RunResources = run if run is not None else _NoRun(log)

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
        return self._run.guards.action(name, key, do, undo=undo)

    def spend(self, *, usd: float = 0.0, tokens: int = 0) -> None:
        """Record a cost *before* incurring it; a spend that would pass a cap ends the run."""
        self._run.guards.spend(usd=usd, tokens=tokens)

    def step(self, label: str | None = None) -> None:
        """Count one step of a loop; more than ``[limits] steps_per_run`` ends the run."""
        self._run.guards.step(label)

    @property
    def http(self) -> httpx.Client:
        """The run's logged httpx client, made on first use."""
        return self._run.http

    @property
    def llm(self) -> LLMClient:
        """The run's model client, made on first use (see :mod:`agentops.llm.client`)."""
        return self._run.llm

    @property
    def memory(self) -> Memory:
        """The run's working memory and long-term notes (see :mod:`agentops.memory.run`)."""
        return self._run.memory


class _NoRun:
    """What backs a Context made outside a run: a plain HTTP client, and nothing else."""

    def __init__(self, log: EventLogger) -> None:
        self._log = log
        self._http: httpx.Client | None = None

    @property
    def guards(self) -> RunGuards:
        raise RuntimeError("this Context belongs to no run: ctx.action needs agentops run")

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            from agentops._infra.http import make_http_client  # noqa: PLC0415 - httpx is slow to import

            self._http = make_http_client(self._log)
        return self._http

    @property
    def llm(self) -> LLMClient:
        raise RuntimeError("this Context belongs to no run: ctx.llm needs agentops run")

    @property
    def memory(self) -> Memory:
        raise RuntimeError("this Context belongs to no run: ctx.memory needs agentops run")
