"""One run of one agent under its lease: the :class:`Run` object the pipeline passes along.

A run holds its spec, its state (loaded, a dead run's journal recovered),
the interrupts that enforce its timeout, its journal, its guards and the
``ctx`` its agent is handed. The steps of :mod:`agentops.run.runner` take the
run instead of threading those pieces through every call.

The run also backs ``ctx`` (:class:`~agentops.context.RunResources`): it makes
the HTTP client, the model client and the memory when the agent first touches
them, and keeps them, so that restarting an attempt, keeping the memory and
closing everything at the end are the run's business, never reachable from
``ctx``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core

from agentops.context import Context
from agentops.errors import StateError
from agentops.guards.facade import RunGuards
from agentops.guards.interrupts import StopRun
from agentops.model.journal import Begin
from agentops.run.loader import load_agent

if TYPE_CHECKING:
    from datetime import datetime

    import httpx
    from pydantic import BaseModel

    from agentops._infra.log import EventLogger
    from agentops.guards.interrupts import RunInterrupts
    from agentops.llm.client import LLMClient
    from agentops.memory.run import Memory, RunMemory
    from agentops.model.ledger import Ledger
    from agentops.model.state import AgentState
    from agentops.project.home import AgentSpec
    from agentops.run.loader import AgentCode
    from agentops.run.services import RunServices
    from agentops.store import JournalWriter, Lease, ReplyStore

__all__ = ["Run"]


class Run:
    """One run (or operator's edit) of one agent, under its lease, with its state loaded."""

    def __init__(
        self,
        services: RunServices,
        spec: AgentSpec,
        state: AgentState,
        interrupts: RunInterrupts,
        lease: Lease,
    ) -> None:
        """A run of ``spec`` over ``state``, holding ``lease``, timed by ``interrupts``."""
        self.services = services
        self.spec = spec
        self.state = state
        self.interrupts = interrupts
        self.lease = lease
        self.journal: JournalWriter | None = None
        """The run's journal, once :meth:`open_journal` has begun it."""
        self._ledger: Ledger | None = None
        self._guards: RunGuards | None = None
        self._ctx: Context | None = None
        self._http: httpx.Client | None = None
        self._llm: LLMClient | None = None
        self._memory: RunMemory | None = None

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.services.name

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.services.run_id

    @property
    def log(self) -> EventLogger:
        """The run's logger."""
        return self.services.log

    # -- what the run reads ------------------------------------------------------------

    def ledger(self) -> Ledger:
        """The agent's ledger, loaded on first use: a run without actions never reads it."""
        if self._ledger is None:
            self._ledger = self.services.store.load_ledger(self.name)
        return self._ledger

    @property
    def ledger_used(self) -> Ledger | None:
        """The ledger if the run has loaded it (only then is it committed), else None."""
        return self._ledger

    def import_code(self) -> AgentCode:
        """Import the agent's code, under the timeout.

        Environment variables the agent sets while importing (``load_dotenv()``)
        are learnt as secrets too.
        """
        try:
            with self.interrupts.armed():
                code = load_agent(self.spec)
        except StopRun as stop:
            raise stop.error(self.name, "importing agent.py", self.spec.config.timeout) from None
        self.services.redactor.learn(os.environ)
        return code

    # -- what the run opens ------------------------------------------------------------

    def open_journal(self, started: datetime, kind: Literal["run", "approve", "edit"]) -> None:
        """Begin the run's journal: its first record, durable before anything is done.

        A dry run saves nothing but the money it really spent: its journal
        commits those records at once and drops the rest.
        """
        services = self.services
        if services.dry_run:
            from agentops.run.dryrun import DryRunJournal  # noqa: PLC0415 - dry runs only

            self.journal = DryRunJournal(services.store, self.lease, self.name, self.run_id)
            return
        journal = services.store.journal(self.lease, self.run_id)
        begin = Begin.model_construct(run_id=self.run_id, at=started, agent=self.name, kind=kind)
        try:
            journal.append(begin)
        except StateError:
            journal.close()
            raise
        self.journal = journal

    def open_context(
        self,
        *,
        started: datetime,
        params: BaseModel | None = None,
        data: dict[str, Any] | None = None,
    ) -> Context:
        """Make the run's guards and the ``ctx`` handed to its agent code.

        ``ctx.state`` is ``data``, or a copy of the state's: never the state's own
        dict, which keeps only what a successful run hands back.
        """
        services = self.services
        self._guards = RunGuards(
            agent=self.name,
            limits=self.spec.config.limits,
            state=self.state,
            ledger=self.ledger,
            journal=self.journal,
            interrupts=self.interrupts,
            log=services.log,
            redactor=services.redactor,
            clock=services.clock,
            sleep=services.sleep,
            permissions=self.spec.config.permissions,
            run_id=self.run_id,
            dry_run=services.dry_run,
            lease=self.lease,
        )
        self._ctx = Context(
            agent=self.name,
            run_id=self.run_id,
            now=started,
            home=services.project.home,
            state=pydantic_core.from_json(pydantic_core.to_json(self.state.data))
            if data is None
            else data,
            log=services.log,
            dry_run=services.dry_run,
            params=params,
            run=self,
        )
        return self._ctx

    @property
    def ctx(self) -> Context:
        """The ``ctx`` handed to agent code (made by :meth:`open_context`)."""
        if self._ctx is None:
            raise RuntimeError("the run's context is not open yet")
        return self._ctx

    @property
    def guards(self) -> RunGuards:
        """The run's guards (made by :meth:`open_context`)."""
        if self._guards is None:
            raise RuntimeError("the run's guards are not open yet")
        return self._guards

    # -- what backs ctx, made on first use ---------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """``ctx.http``: the run's logged client, every request admitted by the guards."""
        if self._http is None:
            from agentops._infra.http import make_http_client  # noqa: PLC0415 - httpx is slow to import

            self._http = make_http_client(
                self.log,
                transport=self.services.http_transport,
                before_request=self.guards.admit_request,
            )
        return self._http

    @property
    def llm(self) -> LLMClient:
        """``ctx.llm``: the run's model client (only agents that call models import it)."""
        if self._llm is None:
            self._llm = self._model_client()
        return self._llm

    def _model_client(self) -> LLMClient:
        from agentops.llm.client import LLMClient  # noqa: PLC0415 - only agents that call models
        from agentops.llm.routes import route  # noqa: PLC0415

        services, spec = self.services, self.spec
        config = spec.config.llm
        cache: ReplyStore | None = None
        if config.cache:  # zero, like none, keeps nothing
            # In the store when it keeps one (shared by hosts), else a file of this host's.
            cache = services.store.reply_cache(
                self.name, ttl_s=config.cache, max_entries=config.cache_entries
            )
            if cache is None:
                from agentops.llm.cache import ReplyCache  # noqa: PLC0415

                cache = ReplyCache(
                    services.fs,
                    services.project.state_dir / f"{self.name}.llm-cache.sqlite",
                    ttl_s=config.cache,
                    max_entries=config.cache_entries,
                )
        return LLMClient(
            config=config,
            route=lambda name: route(
                name,
                services.project.config,
                services.environ,
                capped=spec.config.limits.usd_capped,
            ),
            http=lambda: self.http,
            guards=self.guards,
            retry=spec.config.retry,
            log=services.log,
            redactor=services.redactor,
            metrics=self.state.metrics,
            pii=spec.config.guard.pii,
            cache=cache,
            wall_clock=lambda: services.clock().timestamp(),
            context=lambda: self._ctx,
        )

    @property
    def memory(self) -> Memory:
        """``ctx.memory``: the agent's view of the run's memory, made on first use."""
        if self._memory is None:
            # Made when an agent first touches ctx.memory: the others never import it.
            from agentops.memory.run import RunMemory  # noqa: PLC0415

            services = self.services
            self._memory = RunMemory(
                agent=self.name,
                run_id=self.run_id,
                working=self.state.memory,
                config=self.spec.config.memory,
                path=services.project.memory_path(self.name),
                clock=services.clock,
                redactor=services.redactor,
                fs=services.fs,
                dry_run=services.dry_run,
                stop=self.guards.stop,
                shared=services.store.note_rows(self.name),
            )
        return self._memory.agent_view

    @property
    def memory_used(self) -> RunMemory | None:
        """The run's memory if its agent has touched it, else None (nothing of it changed)."""
        return self._memory

    # -- the run's own business --------------------------------------------------------

    def restart(self, state: dict[str, Any]) -> None:
        """Start an attempt afresh: ``ctx.state`` is ``state``, memory as the run loaded it.

        Replies to the prompts an earlier attempt sent are replayed, not paid for again.
        """
        self.ctx.state = state
        if self._memory is not None:
            self._memory.rewind()
        if self._llm is not None:
            self._llm._rewind()  # noqa: SLF001 - the run owns its model client

    def close(self) -> None:
        """Release what the run opened; threads it left running can no longer use the guards."""
        if self._guards is not None:
            self._guards.close()
        if self._llm is not None:
            self._llm._close()  # noqa: SLF001 - the run owns its model client
            self._llm = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._memory is not None:
            self._memory.close()
