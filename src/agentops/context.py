"""``ctx``: everything an agent's code may touch during a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    import httpx
    from structlog.typing import FilteringBoundLogger

__all__ = ["Context"]


class Context:
    """Handed to ``run(params, ctx)`` and to the agent's hooks.

    - ``ctx.state``: the agent's own persistent dict of JSON values. Changes are
      saved only when the run succeeds, like a transaction.
    - ``ctx.http``: an httpx client whose every call is logged, timed and redacted.
    - ``ctx.log``: a structlog logger bound to the agent and the run id.
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
        log: FilteringBoundLogger,
        dry_run: bool = False,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Made by the runner, once per run."""
        self.agent = agent
        self.run_id = run_id
        self.now = now
        self.home = home
        self.state = state
        self.log = log
        self.dry_run = dry_run
        self._http_transport = http_transport
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """The run's logged httpx client, made on first use."""
        if self._http is None:
            from agentops.httpclient import make_http_client  # noqa: PLC0415 - httpx is slow to import

            self._http = make_http_client(self.log, transport=self._http_transport)
        return self._http

    def close(self) -> None:
        """Release what the run opened."""
        if self._http is not None:
            self._http.close()
            self._http = None
