"""A store's URL said without its passwords, however the URL spells them."""

from __future__ import annotations

import pytest

from agentops._infra.redact import MIN_SECRET_LENGTH, REDACTED
from agentops.store._url import safe_url, url_passwords

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


def test_url_passwords_lists_each_password_decoded_and_in_the_pieces_a_parser_quotes():
    """A password with / and : in it is also found as the pieces libpq may quote alone."""
    found = url_passwords("postgresql://agents:alphabravo%2Fcharliedelta:echofoxtrot@db/agents")
    assert found[0] == "alphabravo%2Fcharliedelta:echofoxtrot", "longest first"
    assert {"alphabravo/charliedelta:echofoxtrot", "alphabravo", "charliedelta"} <= set(found)
    assert "echofoxtrot" in found
    assert found == sorted(found, key=len, reverse=True), "scrubbed whole before its parts"


def test_pieces_too_short_to_be_secrets_are_not_listed():
    """Pieces under MIN_SECRET_LENGTH would scrub ordinary words from every message."""
    found = url_passwords("postgresql://agents:ab/cd@db/agents")
    assert all(len(piece) >= MIN_SECRET_LENGTH for piece in found)


def test_a_url_without_a_password_has_none():
    """Nothing to scrub."""
    assert url_passwords("postgresql://agents@db/agents?sslmode=require") == []
