"""The notes ``agentops store copy`` moves: a store's own rows or the files beside the state, alike.

Real notes files in a temporary ``state/``, and the rows of a real
PostgreSQL store (the suite's server): what is read is what was written, in
the order written; reading writes nothing, not even an empty file; a notes
file that cannot be read is refused, untouched. What ``store copy`` makes
of a whole home is tests/store/test_copy.py's.
"""

from __future__ import annotations

import pytest

from agentops.errors import StateError
from agentops.memory.shelf import Shelf

NOTES = [
    ("the feed moved to /v2", '["feed"]', 1_700_000_000.0, 1, "run-1"),
    ("keep a NUL\x00here", '["odd", "text"]', 1_700_000_100.5, 3, "run-2"),
    ("the feed moved back", "[]", 1_700_000_200.0, 10, "run-3"),
]


def on_files(tmp_path) -> Shelf:
    """A shelf whose store keeps no notes: the notes files in ``tmp_path/state``."""
    (tmp_path / "state").mkdir(exist_ok=True)
    return Shelf(lambda _name: None, tmp_path / "state")


def test_a_shelf_of_files_names_their_directory_and_a_stores_own_names_none(tmp_path, store):
    """Two shelves on the same directory are one place; a store keeping notes has no directory."""
    assert on_files(tmp_path).files == str((tmp_path / "state").absolute())
    assert Shelf(store.note_rows, tmp_path / "state").files is None


def test_notes_in_files_come_back_as_written_in_the_order_written(tmp_path):
    """Text (a NUL too), tags, time, importance and run id; replaced whole, oldest first."""
    shelf = on_files(tmp_path)
    shelf.replace("pub", NOTES)
    assert shelf.holds("pub")
    assert shelf.read("pub") == NOTES
    shelf.replace("pub", NOTES[1:])
    assert shelf.read("pub") == NOTES[1:]
    assert not shelf.holds("other")


def test_reading_or_emptying_an_agent_without_notes_makes_no_file(tmp_path):
    """No notes: nothing read, nothing made; emptying notes kept removes them all."""
    shelf = on_files(tmp_path)
    assert shelf.read("pub") == []
    assert not shelf.holds("pub")
    shelf.replace("pub", [])
    assert list((tmp_path / "state").iterdir()) == []
    shelf.replace("pub", NOTES)
    shelf.replace("pub", [])
    assert shelf.read("pub") == []
    assert not shelf.holds("pub")


def test_a_notes_file_that_is_not_a_database_is_refused_untouched(tmp_path):
    """StateError naming the agent's file; its bytes are as they were, for a person to look at."""
    shelf = on_files(tmp_path)
    path = tmp_path / "state" / "pub.memory.sqlite"
    path.write_bytes(b"not a database, " * 100)
    with pytest.raises(StateError) as refused:
        shelf.read("pub")
    assert str(path) in refused.value.message
    assert path.read_bytes() == b"not a database, " * 100


def test_a_stores_rows_come_back_as_written_its_text_without_nul(tmp_path, store):
    """The same rows, in order, but a NUL (no database text holds one) becomes U+FFFD."""
    shelf = Shelf(store.note_rows, tmp_path / "state")
    assert not shelf.holds("pub")
    shelf.replace("pub", NOTES)
    assert shelf.holds("pub")
    expected = [(text.replace("\x00", "\ufffd"), *rest) for text, *rest in NOTES]
    assert shelf.read("pub") == expected
    shelf.replace("pub", [])
    assert shelf.read("pub") == []
    assert not (tmp_path / "state").exists(), "nothing written beside the state"
