"""A store's URL said without its passwords, however the URL spells them."""

from __future__ import annotations

import pytest

from agentops._infra.redact import REDACTED
from agentops.store._url import safe_url, scrub, url_passwords

PASSWORD = "pw-never-shown"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            f"postgresql://agents:{PASSWORD}@db.example.org/agents",
            "postgresql://agents@db.example.org/agents",
        ),
        (
            f"postgresql://agents@/agents?host=/run/pg&password={PASSWORD}",
            f"postgresql://agents@/agents?host=/run/pg&password={REDACTED}",
        ),
        (
            f"postgresql://agents@db/agents?sslpassword={PASSWORD}&sslmode=require",
            f"postgresql://agents@db/agents?sslpassword={REDACTED}&sslmode=require",
        ),
        (
            "postgresql://agents:pw%2Fwith%40odd@db/agents",
            "postgresql://agents@db/agents",
        ),
        (
            "postgresql://agents:pw/with@odd@db/agents",
            "postgresql://agents@db/agents",
        ),
        (
            f"host=db user=agents password='{PASSWORD} with spaces' dbname=agents",
            f"host=db user=agents password={REDACTED} dbname=agents",
        ),
        ("postgresql:///agents?host=/run/pg", "postgresql:///agents?host=/run/pg"),
    ],
    ids=["user-info", "parameter", "ssl-parameter", "encoded", "unencoded", "keywords", "none"],
)
def test_safe_url_takes_every_password_out(url, said):
    """In the user info or as a parameter, encoded or not: the URL is said without it."""
    assert safe_url(url) == said


def test_a_message_quoting_a_url_is_made_safe_too():
    """An error that quotes the URL inside a sentence loses the password, not the sentence."""
    message = f"cannot connect to postgresql://agents:{PASSWORD}@db/agents: refused"
    assert safe_url(message) == "cannot connect to postgresql://agents@db/agents: refused"


def test_the_pieces_a_parser_quotes_of_a_password_are_scrubbed():
    """A password with / and : in it: the pieces libpq may quote alone are hidden too.

    (Issue 18: every fragment of a password is scrubbed, not a list of its
    pieces; a short word a password happens to hold is left alone.)
    """
    url = "postgresql://agents:alphabravo%2Fcharliedelta:echofoxtrot@db/agents"
    found = url_passwords(url)
    assert found == sorted(found, key=len, reverse=True), "scrubbed whole before its parts"
    said = scrub('invalid port "echofoxtrot" near "alphabravo" and "charliedelta"', found)
    for piece in ("alphabravo", "charliedelta", "echofoxtrot"):
        assert piece not in said
    assert scrub("the db is up", url_passwords("postgresql://agents:ab/cd@db/agents")) == (
        "the db is up"
    )


def test_a_url_without_a_password_has_none():
    """Nothing to scrub."""
    assert url_passwords("postgresql://agents@db/agents?sslmode=require") == []
