"""A group's concurrency limit: a run of a grouped agent holds one of the group's slots.

``group = "llm"`` in agent.toml and ``[groups] llm = 2`` in agentops.toml: at
most two runs of the group's agents at once, on every host sharing the store
(:meth:`~agentops.store.base.Store.group_slot`). A run waits for a slot, before
its lease, at most its ``timeout``; then it is skipped (``group_full``, 75). The
wait does not count toward its hard deadline, which counts again from its end.
Under ``agentops tick`` the wait starts in the tick's queue: an agent whose
group is full on the host is started once its group frees, or once it has
waited its ``timeout``, to try a slot once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from agentops.errors import ConfigError, GroupFull
from agentops.project.tomlfile import key_place

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentops.project.home import AgentSpec
    from agentops.run.invocation import Invocation
    from agentops.run.services import RunServices

__all__ = ["POLL_S", "group_slot"]

POLL_S = 0.5
"""How often a run waiting for its group tries the slots again (and once more at its end)."""


@contextlib.contextmanager
def group_slot(services: RunServices, spec: AgentSpec, invocation: Invocation) -> Iterator[None]:
    """Hold a slot of the agent's group while the block runs (nothing for an agent in none)."""
    group = spec.config.group
    if group is None:
        yield
        return
    limit = services.project.config.groups.get(group)
    if limit is None:
        raise ConfigError(
            f"{key_place(spec.directory / 'agent.toml', ('group',))}: group {group!r} is not in "
            f"agentops.toml's [groups] (add: {group} = N, how many of its agents may run at once)",
            agent=spec.name,
        )
    deadline = services.clock().timestamp() + spec.config.timeout - services.options.group_waited_s
    waited = False
    with contextlib.ExitStack() as waiting:
        while True:
            with services.store.group_slot(group, limit) as held:
                if held:
                    if waited:
                        waiting.close()  # the hard deadline counts from here
                        services.log.info("group.slot_taken", group=group, limit=limit)
                    yield
                    return
            if not waited:
                waiting.enter_context(invocation.deadline_paused(spec))
                services.log.info("group.waiting", group=group, limit=limit)
                waited = True
            left = deadline - services.clock().timestamp()
            if left <= 0:
                raise GroupFull(
                    f"{spec.name}: every slot of group {group!r} ({limit}) stayed taken "
                    f"for {spec.config.timeout:g}s",
                    agent=spec.name,
                )
            services.sleep(min(POLL_S, left))  # the last try at the deadline, not past it
