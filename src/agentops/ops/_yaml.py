"""A small YAML emitter for manifests: block style, every string double-quoted.

agentops needs YAML for one output (``agentops export k8s``), which does not
justify a YAML library among the runtime dependencies. Writing it is small
because the emitter never has to choose a style: every string is
double-quoted, with everything outside printable ASCII escaped, so no reader
(YAML 1.1 or 1.2, PyYAML or Go's) can take ``"on"``, ``"0755"`` or
``"*/5 * * * *"`` for anything but a string. Keys are written bare when they
cannot be misread. Lists of scalars are written in flow style
(``["run", "x"]``), everything else in block style, indented by two spaces.
A key longer than YAML reads inline (1024 characters) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["Node", "dump_all", "quote"]

Node: TypeAlias = "str | int | bool | Mapping[str, Node] | Sequence[Node] | None"
"""What a document is made of: JSON's values, without floats (manifests need none)."""

_BARE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
_WORDS = frozenset({"y", "yes", "n", "no", "on", "off", "true", "false", "null"})
"""Bare words YAML 1.1 reads as booleans or null (any case): such keys are quoted."""
_MAX_KEY = 1024
"""YAML reads a key written inline only up to this length (manifests' keys are short)."""


def quote(text: str) -> str:
    """``text`` as a double-quoted YAML scalar; only printable ASCII stays as it is."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in {'"', "\\"}:
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:  # noqa: PLR2004 - the printable ASCII range
            out.append(char)
        elif code <= 0xFF:  # noqa: PLR2004
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:  # noqa: PLR2004
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def dump_all(documents: Sequence[Mapping[str, Node]], *, comments: Sequence[str] = ()) -> str:
    """A YAML stream: the ``comments`` as ``#`` lines, then each document after ``---``.

    Comments are printable ASCII, one line each (``ValueError`` otherwise).
    """
    if not all(comment.isascii() and comment.isprintable() for comment in comments):
        raise ValueError("a comment must be one line of printable ASCII")
    lines = [f"# {comment}".rstrip() for comment in comments]
    for document in documents:
        lines.append("---")
        lines.extend(_lines(document, "") if document else ["{}"])
    return "".join(f"{line}\n" for line in lines)


def _key(key: str) -> str:
    written = key if _BARE_KEY.fullmatch(key) and key.lower() not in _WORDS else quote(key)
    if len(written) > _MAX_KEY:
        raise ValueError(f"a key of {len(written)} characters is longer than YAML allows")
    return written


def _scalar(value: Node) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        return "{}"  # only ever called for an empty one
    return "[]"


def _collection(value: Node) -> bool:
    return isinstance(value, Mapping | Sequence) and not isinstance(value, str)


def _lines(node: Mapping[str, Node] | Sequence[Node], indent: str) -> list[str]:
    """The lines of a non-empty mapping or sequence, each starting with ``indent``."""
    lines: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            lines.extend(_entry(f"{indent}{_key(key)}:", value, indent))
        return lines
    for item in node:
        if isinstance(item, Mapping) and item:
            # "- key: value" with the rest of the mapping under the first key.
            inner = _lines(item, indent + "  ")
            inner[0] = f"{indent}- {inner[0][len(indent) + 2 :]}"
            lines.extend(inner)
        else:
            lines.extend(_entry(f"{indent}-", item, indent))
    return lines


def _entry(head: str, value: Node, indent: str) -> list[str]:
    """``head`` (``key:`` or ``-``) followed by ``value``, on one line or as a block under it."""
    if not _collection(value) or not value:
        return [f"{head} {_scalar(value)}"]
    assert isinstance(value, Mapping | Sequence)  # noqa: S101 - narrowed by _collection
    if isinstance(value, Mapping) or any(_collection(item) for item in value):
        return [head, *_lines(value, indent + "  ")]
    return [f"{head} [{', '.join(_scalar(item) for item in value)}]"]
