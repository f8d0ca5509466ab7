"""The functions an agent's ``agent.py`` defines, as typing Protocols.

agentops finds them by name in the agent's module and calls them with
positional arguments, so any parameter names do. ``run`` is required; the
hooks are optional::

    run(params, ctx) -> Result                the task
    validate(result, ctx)                     raise to reject the output (exit 65)
    rollback(output, ctx)                     a rejected output: undo what it did
    fallback(params, ctx, error) -> Result    run() failed after its retries
    apply(result, ctx)                        perform a result that passed review
    reconcile(action, key, ctx) -> found      did an action cut short by a crash happen?

An agent checks its functions against them with a type checker, at no cost
when it runs::

    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        from agentops import RunHook, ValidateHook

        _run: RunHook[Params, Result] = run
        _validate: ValidateHook[Result] = validate
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentops.context import Context

__all__ = [
    "ApplyHook",
    "FallbackHook",
    "ReconcileHook",
    "RollbackHook",
    "RunHook",
    "ValidateHook",
]

_ParamsT_contra = TypeVar("_ParamsT_contra", bound="BaseModel", contravariant=True)
_ResultT_co = TypeVar("_ResultT_co", bound="BaseModel", covariant=True)
_ResultT_contra = TypeVar("_ResultT_contra", bound="BaseModel", contravariant=True)


class RunHook(Protocol[_ParamsT_contra, _ResultT_co]):
    """``run(params: Params, ctx: Context) -> Result``: the agent's task, the one required function.

    ``Params`` and ``Result`` are pydantic models, read from its annotations.
    It is called once per attempt: a :class:`~agentops.errors.TransientError`,
    a network timeout or connection error, a 429 or a 5xx is retried
    (``[retry]``), each attempt starting again from the state the run loaded.
    It must be a plain function, not ``async def`` or a generator.
    """

    def __call__(self, params: _ParamsT_contra, ctx: Context, /) -> _ResultT_co:
        """Do the task with the validated ``params``; return the Result."""


class ValidateHook(Protocol[_ResultT_contra]):
    """``validate(result: Result, ctx: Context) -> None``: raise to reject the output.

    Called after the Result model accepted the output. An exception it raises
    rejects the output (exit 65): ``rollback()`` is called and the run's committed
    actions are undone. What it returns is not read, so it returns None:
    returning False would reject nothing.
    """

    def __call__(self, result: _ResultT_contra, ctx: Context, /) -> None:
        """Check ``result``; raise to reject it."""


class RollbackHook(Protocol):
    """``rollback(output, ctx: Context) -> None``: undo what a rejected output did.

    Called when the output is rejected, before the run's committed actions are
    undone (newest first). ``output`` is what ``run()`` (or ``fallback()``)
    returned, as it was: when the Result model itself refused it, it may not be
    a Result at all, so check it (``isinstance(output, Result)``) before use.
    What it raises is logged (``rollback.failed``); the run is rejected anyway.
    """

    def __call__(self, output: Any, ctx: Context, /) -> None:
        """Undo the effects of the rejected ``output``."""


class FallbackHook(Protocol[_ParamsT_contra, _ResultT_co]):
    """``fallback(params: Params, ctx: Context, error: Exception) -> Result``: a degraded result.

    Called once when ``run()`` still fails after its retries (every model down
    reaches it as :class:`~agentops.errors.LLMUnavailable`), with the error of
    the last attempt and the state the run loaded. Its Result is checked like
    any other and the run is marked ``degraded``; if it raises too, the run
    fails and its line names both errors.
    """

    def __call__(self, params: _ParamsT_contra, ctx: Context, error: Exception, /) -> _ResultT_co:
        """Make a degraded Result, knowing ``run()`` failed with ``error``."""


class ApplyHook(Protocol[_ResultT_contra]):
    """``apply(result: Result, ctx: Context) -> None``: perform a result.

    With it, ``run()`` only drafts and the result's ``confidence`` (0 to 1)
    decides: applied at once, held for ``agentops review``, or escalated.
    ``agentops review approve`` calls it later, under the same guards as a run.
    What it puts in ``ctx.state`` is kept; what it returns is not read.
    """

    def __call__(self, result: _ResultT_contra, ctx: Context, /) -> None:
        """Perform ``result`` (publish it, send it, write it)."""


class ReconcileHook(Protocol):
    """``reconcile(action: str, key: str, ctx: Context) -> object``: settle a crashed action.

    Called before ``run()``, for each guarded action whose ``do()`` a
    crash interrupted (its effect unknown). ``False`` or ``None``: it did not
    happen, so ``ctx.action`` may run ``do()`` again. ``True``: it happened,
    and ``ctx.action`` returns None for it. Anything else: it happened, and
    this is the (JSON) result ``do()`` would have returned, which ``ctx.action``
    returns for it from then on. If it raises, the action stays unresolved.
    """

    def __call__(self, action: str, key: str, ctx: Context, /) -> object:
        """Look for the effect of ``action`` on ``key``; say whether it happened."""
