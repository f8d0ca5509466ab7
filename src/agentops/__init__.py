"""agentops: run AI and automation agents from cron, safely.

An agent imports what it needs from here, and from nowhere else in agentops::

    from agentops import Context, TransientError

- :class:`Context`: ``ctx``, everything a run hands the agent's code.
- :class:`TransientError`: raised by an agent to have its run retried.
- :class:`LLMError` and its kinds :class:`LLMUnavailable`, :class:`PromptTooLarge`,
  :class:`ReplyRejected` and :class:`ReplyRefused`: what ``ctx.llm`` raises when it
  has no reply.
- :class:`Completion`: a reply of ``ctx.llm.complete()``.
- :func:`tool`: declares how far a tool of ``ctx.llm.run()`` reaches
  (``@tool(effect=True)``, ``@tool(confirm=True)``).
- :class:`Note`: a long-term note, as ``ctx.memory.relevant()`` returns it.
- :class:`Ticket`: what ``ctx.action`` hands a ``do(ticket)``: its idempotency
  key and the lease's fencing token.
- :class:`RunHook`, :class:`ValidateHook`, :class:`RollbackHook`,
  :class:`FallbackHook`, :class:`ApplyHook`, :class:`ReconcileHook`: the
  functions an ``agent.py`` defines, as typing Protocols.
- ``__version__``.

cron imports this package on every tick, so it imports nothing itself: each
name is imported from its module the first time it is used (PEP 562), and
type checkers read the imports under ``TYPE_CHECKING``. Not even
:mod:`typing`: as a container's PID 1, agentops drops a SIGTERM until it
blocks it (:mod:`agentops.run.pid1`), so the time before then is kept short.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which type checkers take as true
if TYPE_CHECKING:
    from agentops.context import Context
    from agentops.errors import (
        LLMError,
        LLMUnavailable,
        PromptTooLarge,
        ReplyRefused,
        ReplyRejected,
        TransientError,
    )
    from agentops.guards.ticket import Ticket
    from agentops.hooks import (
        ApplyHook,
        FallbackHook,
        ReconcileHook,
        RollbackHook,
        RunHook,
        ValidateHook,
    )
    from agentops.llm.completion import Completion
    from agentops.llm.tools import tool
    from agentops.memory.notes import Note

__all__ = [
    "ApplyHook",
    "Completion",
    "Context",
    "FallbackHook",
    "LLMError",
    "LLMUnavailable",
    "Note",
    "PromptTooLarge",
    "ReconcileHook",
    "ReplyRefused",
    "ReplyRejected",
    "RollbackHook",
    "RunHook",
    "Ticket",
    "TransientError",
    "ValidateHook",
    "__version__",
    "tool",
]

__version__ = "0.1.0"

_HOMES = {
    "ApplyHook": "agentops.hooks",
    "Completion": "agentops.llm.completion",
    "Context": "agentops.context",
    "FallbackHook": "agentops.hooks",
    "LLMError": "agentops.errors",
    "LLMUnavailable": "agentops.errors",
    "Note": "agentops.memory.notes",
    "PromptTooLarge": "agentops.errors",
    "ReconcileHook": "agentops.hooks",
    "ReplyRefused": "agentops.errors",
    "ReplyRejected": "agentops.errors",
    "RollbackHook": "agentops.hooks",
    "RunHook": "agentops.hooks",
    "Ticket": "agentops.guards.ticket",
    "TransientError": "agentops.errors",
    "ValidateHook": "agentops.hooks",
    "tool": "agentops.llm.tools",
}
"""The module each public name lives in: a name that moves changes its line here and
its import above (tests/test_public_api.py checks that the two agree)."""


# Hidden from type checkers: they see the imports above, and a module-level
# __getattr__ would let them accept any misspelt name as an `object`.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a public name from its module on first use, then keep it here."""
        import importlib  # noqa: PLC0415 - only once a name is asked for

        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'agentops' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # the next lookup finds it without calling this again
        return value


def __dir__() -> list[str]:
    """The public API (and the module's dunders), loaded or not yet."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


del TYPE_CHECKING
