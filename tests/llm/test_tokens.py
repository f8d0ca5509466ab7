"""Token estimates and bounds, pruning to a window, and Sizes: each message worked out once."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agentops.llm import tokens
from agentops.llm.tokens import (
    MESSAGE_OVERHEAD,
    Sizes,
    bound_messages,
    estimate,
    estimate_messages,
    prune,
)
from llmagent import conversation

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
_ARGUMENTS = st.dictionaries(st.text(max_size=5), st.integers() | _TEXT, max_size=3)
_CALL = st.fixed_dictionaries(
    {"id": st.text(max_size=8), "name": st.text(max_size=8), "arguments": _ARGUMENTS | _TEXT}
)
_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": _TEXT}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": _TEXT, "tool_calls": st.lists(_CALL, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "content": _TEXT | st.none(), "tool_call_id": st.text(max_size=8)}
    ),
)


def _text(message: dict[str, Any]) -> bytes:
    # What a message says, as the estimates read it (written out again here).
    content = message.get("content")
    text = "" if content is None else str(content)
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"], ensure_ascii=False, default=str)
    return text.encode("utf-8", "surrogatepass")


def _estimate(messages: list[dict[str, Any]]) -> int:
    return 3 + sum(MESSAGE_OVERHEAD + max(1, -(-len(_text(m)) // 3)) for m in messages)


def _bound(messages: list[dict[str, Any]]) -> int:
    return 3 + sum(MESSAGE_OVERHEAD + max(1, len(_text(m))) for m in messages)


@given(st.lists(st.lists(_MESSAGE, min_size=1, max_size=4), min_size=1, max_size=8))
def test_kept_figures_equal_the_whole_conversation_worked_out_again(turns):
    sizes = Sizes()
    conversation: list[dict[str, Any]] = []
    for turn in turns:  # a tool loop's: each turn appends, and sends it all
        conversation.extend(turn)
        assert sizes.estimate(conversation) == estimate_messages(conversation)
        assert sizes.estimate(conversation) == _estimate(conversation)
        assert sizes.bound(conversation) == bound_messages(conversation)
        assert sizes.bound(conversation) == _bound(conversation)
        # An equal message that is another object is worked out for itself.
        copied = [dict(m) for m in conversation]
        assert sizes.estimate(copied) == _estimate(copied)


def test_a_message_is_worked_out_once_however_many_turns_send_it(monkeypatch):
    seen: list[object] = []
    real = tokens.text_of
    monkeypatch.setattr(tokens, "text_of", lambda m: seen.append(m) or real(m))
    sizes = Sizes()
    conversation = [{"role": "user", "content": "go"}]
    for n in range(5):
        conversation.append({"role": "tool", "content": str(n), "tool_call_id": str(n)})
        sizes.estimate(conversation)
        sizes.bound(conversation)
    assert len(seen) == len(conversation)


def test_an_estimate_is_a_token_per_three_bytes_and_never_zero():
    """Bytes of UTF-8, not characters: other scripts are counted high, never low."""
    assert estimate("") == 1
    assert estimate("abc") == 1
    assert estimate("abcd") == 2
    assert estimate("é" * 3) == 2  # six bytes
    assert estimate_messages([{"role": "user", "content": "abc"}]) == 3 + MESSAGE_OVERHEAD + 1


def test_a_reservation_bound_is_a_token_per_byte():
    """No byte-level tokenizer makes more tokens than bytes: the bound for money."""
    assert bound_messages([{"role": "user", "content": "abc"}]) == 3 + MESSAGE_OVERHEAD + 3
    assert bound_messages([{"role": "user", "content": "ሰላም"}]) == 3 + MESSAGE_OVERHEAD + 9
    assert bound_messages([{"role": "user", "content": ""}]) == 3 + MESSAGE_OVERHEAD + 1


def test_prune_drops_the_middle_keeping_the_system_prompt_and_the_newest():
    """A long conversation loses its oldest turns; the system prompt and the last turns stay."""
    messages = [*conversation(10), {"role": "user", "content": "the last question"}]
    kept, dropped = prune(messages, 120)
    assert dropped > 0
    assert kept[0] == messages[0]
    assert kept[-1] == messages[-1]
    assert kept[1:] == messages[len(messages) - len(kept) + 1 :], "a contiguous tail"
    assert estimate_messages(kept) <= 120
    assert len(kept) + dropped == len(messages)


def test_prune_leaves_what_fits_alone_and_keeps_one_message_that_cannot_fit():
    """Nothing to cut: unchanged. One huge message: kept, for the caller to refuse."""
    messages = conversation(1)
    assert prune(messages, 10_000) == (messages, 0)
    huge = [{"role": "system", "content": "s"}, {"role": "user", "content": "z" * 3000}]
    kept, dropped = prune(huge, 100)
    assert (kept, dropped) == (huge, 0)
    assert estimate_messages(kept) > 100
