"""Text for terminals: escape sequences and bidi overrides from a log are shown, not obeyed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops._infra.terminal import printable, printable_event

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""The bidirectional overrides and isolates: they reorder the text shown after them."""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[Hcleared", "\\x1b[2J\\x1b[Hcleared"),
        ("bell\x07 and del\x7f", "bell\\x07 and del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("Ünïcødé stays", "Ünïcødé stays"),
    ],
)
def test_control_characters_are_escaped_and_text_is_kept(text, shown):
    """C0, C1 and DEL, and the bidi overrides and isolates, become escapes; tab and newline stay."""
    assert printable(text) == shown


@given(st.text())
def test_printable_text_holds_no_character_a_terminal_obeys(text):
    """Whatever the text, what is shown holds no control character but tab and newline."""
    shown = printable(text)
    assert all(
        ch in "\t\n"
        or not (
            ord(ch) < 0x20
            or 0x7F <= ord(ch) <= 0x9F
            or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        )
        for ch in shown
    )


def test_an_event_has_every_key_and_text_escaped_and_what_is_left_out_gone():
    """Keys, nested texts and lists are escaped; ts, level and event become text, event always."""
    event = {
        "ts": 1,
        "level": None,
        "\x1bkey": {"in\x1b": ["a\x1b", 3]},
        "secret": "left out",
    }
    shown = printable_event(event, without=("secret",))
    assert shown == {
        "ts": "1",
        "level": "None",
        "\\x1bkey": {"in\\x1b": ["a\\x1b", 3]},
        "event": "",
    }
