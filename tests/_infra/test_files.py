"""Reading a file agentops did not necessarily write: a regular file within its bound, or a refusal.

Real files of every kind in a temporary directory: a FIFO, a socket, a
directory, a link, a sparse file larger than the bound. A refusal is an
``OSError`` whose words say what stands there, and nothing is ever waited on.
"""

from __future__ import annotations

import errno
import os
import threading

import pytest

from agentops._infra.files import (
    STATE_FILE_LIMIT,
    Unreadable,
    check_regular,
    load_json,
    open_regular,
    read_regular,
)
from suite import plant

NESTED = b"[" * 2000 + b"\n"


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
def test_only_a_regular_file_is_opened(tmp_path, kind):
    """A FIFO, a socket, a directory: Unreadable naming the kind, at once, nothing opened."""
    path = tmp_path / "x.json"
    plant(path, kind)
    with pytest.raises(Unreadable) as refused:
        read_regular(path)
    assert refused.value.strerror.startswith("it is a ")
    assert refused.value.strerror.endswith(", not a regular file")
    assert refused.value.filename == str(path)


def test_a_fifo_is_never_waited_on_even_when_swapped_in_after_the_check(tmp_path, monkeypatch):
    """The open is non-blocking: a FIFO put there after lstat is refused by fstat, not waited on."""
    path = tmp_path / "x.json"
    os.mkfifo(path)
    monkeypatch.setattr("agentops._infra.files.check_regular", lambda *_, **__: True)
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            open_regular(path)
        except Unreadable as exc:
            done.append(exc)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(30)  # bounds a hang only: a blocking open would never return
    assert not reader.is_alive(), "opening the FIFO waited for a writer"
    assert "a FIFO" in str(done[0])


def test_a_link_is_refused_unless_followed_on_purpose(tmp_path):
    """A symbolic link is ELOOP; a configuration file may be linked into place."""
    target = tmp_path / "real.toml"
    target.write_text("x = 1\n")
    link = tmp_path / "agent.toml"
    link.symlink_to(target)
    with pytest.raises(Unreadable, match="symbolic link"):
        read_regular(link)
    assert read_regular(link, follow_links=True) == b"x = 1\n"
    assert check_regular(tmp_path / "missing") is False


def test_json_nested_too_deep_is_a_value_error_never_a_recursion_error():
    """The parser's depth bound: ValueError, which every reader already turns into one line."""
    with pytest.raises(ValueError, match="recursion limit"):
        load_json(NESTED)
    assert load_json(b"[" * 100 + b"]" * 100) is not None


def test_nothing_there_is_none_and_a_regular_file_is_read_whole(tmp_path):
    """A missing file is not an error: None; a regular file gives its bytes, at its bound too."""
    path = tmp_path / "x.json"
    assert read_regular(path) is None
    assert open_regular(path) is None
    path.write_bytes(b"12345")
    assert check_regular(path) is True
    assert read_regular(path, limit=5) == b"12345"


def test_a_file_larger_than_its_bound_is_refused_with_both_sizes(tmp_path):
    """EFBIG, saying how large it is and how much agentops reads, in words; not one byte read."""
    path = tmp_path / "x.json"
    with path.open("wb") as big:
        big.truncate(3_200_000_000)  # sparse: nothing is written
    with pytest.raises(Unreadable) as refused:
        read_regular(path, limit=STATE_FILE_LIMIT)
    assert refused.value.errno == errno.EFBIG
    assert refused.value.strerror == "it is 3.2 GB, more than the 268.4 MB agentops reads of it"
    path.write_bytes(b"123456")
    with pytest.raises(Unreadable, match="it is 6 bytes, more than the 5 bytes"):
        read_regular(path, limit=5)


def test_a_directory_is_refused_before_it_is_opened(tmp_path):
    """check_regular names what stands there, in the words every one-line error then shows."""
    with pytest.raises(Unreadable) as refused:
        check_regular(tmp_path)
    assert (
        str(refused.value)
        == f"[Errno {errno.EINVAL}] it is a directory, not a regular file: {str(tmp_path)!r}"
    )


def test_json_that_is_not_json_is_a_value_error():
    """NaN and Infinity are not JSON, nor is a truncated document: ValueError, as for any junk."""
    assert load_json(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for junk in (b"NaN", b'{"a": Infinity}', b'{"a": 1', b"\xff"):
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic-core's words vary
            load_json(junk)
