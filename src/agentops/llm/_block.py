"""Block reservations: the money of several tool-loop turns held durably once, drawn in memory.

Every model turn has its worst case held before it is sent; a reservation
is a durable (fsynced) journal record, and a loop of twenty tool calls
would make twenty-one of them. Inside ``ctx.llm.run`` a turn draws instead
from a *block*: one ordinary reservation of several turns' worst case,
bounded by what the caps leave (at most :data:`SHARE` of it). A turn whose
worst case fits what the block has left is drawn from it in memory, and its
reply gives back in memory what it did not cost; one that does not fit
closes the block (settled to what its turns cost, or held: a turn that got
no reply keeps its worst case) and opens the next; where the caps cannot
grant a block, the turn is reserved alone, as any call is (and refused
there if it could pass a cap).

So a cap is never passed (the block was admitted against every cap, and a
turn is drawn only from what the block has left), and a run killed mid-loop
keeps the whole block reserved: more than was spent, never less. The next
run folds the journal and finds it, as any reservation a dead run left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.model.money import MAX_TOKENS, MAX_USD

if TYPE_CHECKING:
    from agentops.guards.facade import RunGuards

__all__ = ["GROWTH", "SHARE", "Blocks"]

SHARE = 0.5
"""The most of what the caps leave one block may hold: the rest stays for other costs."""

GROWTH = 2
"""A block asks for each turn left twice the first turn's worst case: the conversation grows."""


class _Block:
    """One block reservation, and what it has not yet given to its turns."""

    __slots__ = ("closed", "left_tokens", "left_usd", "reservation", "tokens", "usd")

    def __init__(self, reservation: str, usd: float, tokens: int) -> None:
        self.reservation = reservation
        self.usd, self.tokens = usd, tokens
        self.left_usd, self.left_tokens = usd, tokens
        self.closed = False

    def fits(self, usd: float, tokens: int) -> bool:
        return not self.closed and usd <= self.left_usd and tokens <= self.left_tokens


class Blocks:
    """The reservations of one tool loop: ``reserve`` and ``settle`` as :class:`RunGuards` has them.

    Used as the loop's funds by :class:`~agentops.llm._send.Sender`; :meth:`close`
    settles the open block as the loop ends, however it ends.
    """

    def __init__(self, guards: RunGuards, *, turns: int) -> None:
        """``turns``: the most turns the loop may still take (its ``max_steps``)."""
        self._guards = guards
        self._turns = turns
        self._block: _Block | None = None
        self._draws: dict[str, tuple[_Block, float, int]] = {}
        self._drawn = 0

    def reserve(self, *, usd: float, tokens: int = 0) -> str:
        """Hold a turn's worst case: drawn from a block, or reserved alone; its id."""
        with self._guards.lock:
            turns, self._turns = self._turns, max(1, self._turns - 1)
            block = self._block
            if block is None or not block.fits(usd, tokens):
                self._settle_block()
                block = self._block = self._open(usd, tokens, turns)
                if block is None:
                    return self._guards.reserve(usd=usd, tokens=tokens)
            block.left_usd -= usd
            block.left_tokens -= tokens
            self._drawn += 1
            draw = f"{block.reservation}/{self._drawn}"
            self._draws[draw] = (block, usd, tokens)
            return draw

    def settle(self, reservation: str, *, usd: float, tokens: int) -> None:
        """Say what a turn cost: given back to its block in memory, or settled as any call's."""
        with self._guards.lock:
            drawn = self._draws.pop(reservation, None)
            if drawn is None:
                self._guards.settle(reservation, usd=usd, tokens=tokens)
                return
            block, worst_usd, worst_tokens = drawn
            # A block already settled keeps the worst case: counted, never forgotten.
            block.left_usd += worst_usd - usd
            block.left_tokens += worst_tokens - tokens

    def close(self) -> None:
        """Settle the open block to what its turns cost (a turn with no reply: its worst case)."""
        with self._guards.lock:
            self._settle_block()

    def _open(self, usd: float, tokens: int, turns: int) -> _Block | None:
        """A block for ``turns`` turns like this one, if the caps grant it; None if not worth it."""
        if turns < 2:  # noqa: PLR2004 - a block of one turn is a plain reservation
            return None
        room_usd, room_tokens = self._guards.room()
        block_usd = min(usd * turns * GROWTH, room_usd * SHARE, MAX_USD)
        block_tokens = min(tokens * turns * GROWTH, MAX_TOKENS)
        if room_tokens is not None:
            block_tokens = min(block_tokens, int(room_tokens * SHARE))
        if block_usd < usd or block_tokens < tokens:
            return None  # the caps leave too little: reserved alone (or refused) as any call
        reservation = self._guards.reserve(usd=block_usd, tokens=block_tokens)
        return _Block(reservation, block_usd, block_tokens)

    def _settle_block(self) -> None:
        block, self._block = self._block, None
        if block is None:
            return
        block.closed = True
        used_usd = max(0.0, block.usd - block.left_usd)
        used_tokens = max(0, block.tokens - block.left_tokens)
        self._guards.settle(block.reservation, usd=used_usd, tokens=used_tokens)
