"""Finding the line of a key in a TOML text: what every configuration error points at."""

from __future__ import annotations

import pytest

from agentops.errors import ConfigError
from agentops.project.tomlfile import key_line, read_toml

TEXT = """\
description = "x"          # 1
schedule = "every day"     # 2

[limits]                   # 4
runs = "lots"              # 5

[limits.actions]           # 7
publish = "x"              # 8

[params]                   # 10
"feed.url" = "y"           # 11
retry.max = 3              # 12
inline = { a = 1 }         # 13

[[things]]                 # 15
name = "a"                 # 16
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("schedule",), 2),
        (("limits", "runs"), 5),
        (("limits",), 4),
        (("limits", "actions", "publish"), 8),
        (("limits", "actions", "other"), 7),
        (("params", "feed.url"), 11),
        (("params", "retry", "max"), 12),
        (("params", "retry"), 12),
        (("params", "inline", "a"), 13),
        (("params", "missing"), 10),
        (("things", 0, "name"), 15),
        (("timeout",), None),
        ((), None),
    ],
)
def test_a_key_is_found_where_it_is_set_or_at_its_table(loc, line):
    """The key's own line; else the deepest table or key holding it; None when nothing does."""
    assert key_line(TEXT, loc) == line


def test_an_integer_of_more_digits_than_python_reads_is_bad_toml(tmp_path):
    """Past 4,300 digits tomllib's int() raises a plain ValueError: refused in one line, not 70."""
    path = tmp_path / "agentops.toml"
    path.write_text("[defaults]\ntimeout = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError) as refused:
        read_toml(path, agent=None)
    assert str(refused.value) == f"{path}: bad TOML: a number too long to read"
