"""What ``ctx.llm.complete()`` returns: a frozen record an agent can name without loading httpx.

What each field holds after a real call is tests/llm/test_client.py's and
the providers' tests'; here, what the type itself promises an agent's code.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from agentops import Completion


def test_naming_the_type_loads_neither_httpx_nor_the_client():
    """``from agentops import Completion`` in an agent's module costs no HTTP client at start-up."""
    code = textwrap.dedent(
        """
        import sys
        from agentops import Completion
        assert Completion.__module__ == "agentops.llm.completion"
        print(sorted(m for m in sys.modules if m == "httpx" or m == "agentops.llm.client"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_a_completion_is_frozen_and_says_a_plain_whole_reply_by_default():
    """An agent cannot change what it was told; unsaid, a reply stopped and is whole."""
    reply = Completion(
        text="hi",
        parsed=None,
        model="small",
        tokens_in=3,
        tokens_out=1,
        cost_usd=0.001,
        cached=False,
        latency_ms=12.5,
    )
    assert (reply.finish_reason, reply.raw_finish_reason) == ("stop", None)
    assert (reply.truncated, reply.refusal) == (False, None)
    assert (reply.tokens_cached, reply.tokens_cache_write, reply.tokens_reasoning) == (0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.text = "something else"  # type: ignore[misc]
