"""The manifests' YAML emitter: what it writes reads back as exactly what it was given."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agentops.ops._yaml import dump_all, quote

scalars = st.none() | st.booleans() | st.integers() | st.text()
keys = st.text(max_size=100)  # written, at most ten characters each: under YAML's 1024
nodes = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)
documents = st.lists(st.dictionaries(keys, nodes, max_size=5), max_size=3)


@settings(max_examples=500)
@given(documents, st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))))
def test_every_stream_reads_back_as_written(docs, comments):
    """Any documents of strings, integers, booleans, nulls, lists and maps round-trip exactly."""
    back = list(yaml.safe_load_all(dump_all(docs, comments=comments)))
    assert json.dumps(back) == json.dumps(docs)  # JSON tells true from 1, unlike ==


@pytest.mark.parametrize("word", ["on", "No", "y", "TRUE", "null", "~", "0755", "1e3", "-", "@x"])
def test_words_yaml_would_read_as_other_types_stay_strings(word):
    """Keys and values YAML 1.1 reads as booleans, nulls or numbers are quoted."""
    text = dump_all([{word: word, "list": [word]}])
    assert yaml.safe_load(text) == {word: word, "list": [word]}


def test_strings_are_double_quoted_with_only_printable_ascii_bare():
    """Quotes and backslashes are escaped; anything else outside printable ASCII too."""
    assert quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert quote("é\n\u2028😀") == '"\\xe9\\x0a\\u2028\\U0001f600"'


def test_the_layout_is_block_style_with_flow_lists_of_scalars():
    """Maps and lists of maps are blocks indented by two; lists of scalars sit on one line."""
    text = dump_all(
        [{"kind": "CronJob", "spec": {"args": ["run", "x"], "env": [{"name": "TZ"}], "e": {}}}],
        comments=["made by a test"],
    )
    assert text == (
        "# made by a test\n"
        "---\n"
        'kind: "CronJob"\n'
        "spec:\n"
        '  args: ["run", "x"]\n'
        "  env:\n"
        '    - name: "TZ"\n'
        "  e: {}\n"
    )


@pytest.mark.parametrize("comment", ["two\nlines", "\x08", "café"])
def test_a_comment_is_one_line_of_printable_ascii(comment):
    """A comment that would end early or be unreadable is refused."""
    with pytest.raises(ValueError, match="one line of printable ASCII"):
        dump_all([], comments=[comment])


def test_a_key_too_long_for_yaml_is_refused():
    """YAML reads an inline key of at most 1024 characters: a longer one is an error, not junk."""
    with pytest.raises(ValueError, match="longer than YAML allows"):
        dump_all([{"k" * 1025: 1}])
