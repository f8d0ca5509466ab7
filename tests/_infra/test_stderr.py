"""The real stderr: a line for the operator still reaches a person while output is captured."""

from __future__ import annotations

import io
import sys

from agentops._infra import stderr


def test_without_a_capture_it_is_sys_stderr():
    """No capture in place: the real stderr is sys.stderr as it is now."""
    assert stderr.real_stderr() is sys.stderr


def test_the_oldest_capture_that_knows_the_stream_it_replaced_wins():
    """Captures nest: the first one that can name the stream it replaced gives it."""
    outer, inner = io.StringIO(), io.StringIO()

    def knows_nothing():
        return None

    def first():
        return outer

    def second():
        return inner

    for source in (knows_nothing, first, second):
        stderr.register(source)
    try:
        assert stderr.real_stderr() is outer
        stderr.unregister(first)
        assert stderr.real_stderr() is inner
    finally:
        for source in (knows_nothing, first, second):
            stderr.unregister(source)  # twice is harmless
    assert stderr.real_stderr() is sys.stderr
