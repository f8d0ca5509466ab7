"""A store's location is said without its password, however the password is written.

:mod:`agentops.store._url` reads a password as generously as any parser
might, and libpq keyword strings as libpq does: properties over passwords of
every character URLs and keyword strings reserve, then the real thing,
``agentops`` commands against the suite's server with such a password in
each spelling (unencoded in a URL, percent-encoded, in ``?password=``, in a
keyword string): no piece of it in anything printed, logged or kept.
"""

from __future__ import annotations

import itertools
import re
import string
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentops._infra.redact import REDACTED
from agentops.errors import ConfigError
from agentops.store import STORE_URL_ENV
from agentops.store._url import (
    FRAGMENT,
    is_keyword_string,
    keyword_pairs,
    misread,
    safe_url,
    scrub,
    url_passwords,
)
from agentops.store.postgres import PostgresStore
from agentops.store.registry import POSTGRESQL, backend_for
from suite import cron_env

SPECIAL = "@/?#%:&= '\\"
"""What URLs and keyword strings reserve: every one of them is in the passwords tried."""

PASSWORD = "Zq4@Kx/Wm?Pv#Lr%Ty:Hn&Bs Ud'Fe\\Gi=Oj"
"""A password holding every character of :data:`SPECIAL`, between runs of capitals and digits."""

passwords = st.text(alphabet=string.ascii_uppercase + string.digits + SPECIAL, min_size=1)


def fragments(password: str) -> set[str]:
    """Every piece of ``password`` (as written, and percent-encoded) a reader could use.

    Pieces of :data:`FRAGMENT` characters or more holding a capital or a
    digit: nothing else in the locations tried holds one.
    """
    found = set()
    for form in (password, quote(password, safe="")):
        for start, end in itertools.combinations(range(len(form) + 1), 2):
            piece = form[start:end]
            if end - start >= FRAGMENT and re.search(r"[A-Z0-9]", piece):
                found.add(piece)
    return found


def leaked(password: str, text: str) -> set[str]:
    """The pieces of ``password`` in ``text`` (where it says [REDACTED], none)."""
    text = text.replace(REDACTED, "\0")
    return {piece for piece in fragments(password) if piece in text}


def keyword_quoted(password: str) -> str:
    """``password`` as a keyword string's quoted value."""
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spellings(
    password: str, *, user: str = "app", database: str = "db", host: str = "/run/pg"
) -> dict[str, str]:
    """The ways people write a password into a store's location."""
    query = f"host={host}&user={user}"
    encoded = quote(password, safe="")
    return {
        "unencoded in the user info": f"postgresql://{user}:{password}@/{database}?{query}",
        "percent-encoded in the user info": f"postgresql://{user}:{encoded}@/{database}?{query}",
        "?password=, percent-encoded": f"postgresql:///{database}?{query}&password={encoded}",
        "?password=, unencoded": f"postgresql:///{database}?{query}&password={password}",
        "a keyword string": (
            f"dbname={database} host={host} password={keyword_quoted(password)} user={user}"
        ),
    }


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=300)
@given(passwords)
def test_a_location_is_said_without_any_piece_of_its_password(password):
    """safe_url() of every spelling holds no piece of the password."""
    for spelled, location in spellings(password).items():
        assert not leaked(password, safe_url(location)), spelled


@settings(max_examples=300)
@given(passwords, st.data())
def test_what_a_driver_quotes_of_a_location_is_scrubbed(password, data):
    """Any piece of a location, raw or decoded, as an error might quote it: scrubbed bare."""
    for location in spellings(password).values():
        for text in (location, re.sub(r"%[0-9A-Fa-f]{2}", "\ufffd", location)):
            start = data.draw(st.integers(0, len(text)))
            end = data.draw(st.integers(start, len(text)))
            quoted = f'invalid URI query parameter: "{text[start:end]}"'
            said = scrub(safe_url(quoted), url_passwords(location))
            assert not leaked(password, said), (location, quoted, said)


@pytest.mark.parametrize("password", [" 000", "  Ab1", " A B ", "\tQ9z"])
def test_a_password_that_starts_with_a_space_is_scrubbed_whole(password):
    """In a URL's query a space after ``password=`` is the password's (Hypothesis: ' 000')."""
    for location in spellings(password).values():
        for piece in (location, location.partition("postgresql")[2]):  # quoted whole, or not
            quoted = f'invalid URI query parameter: "{piece}"'
            said = scrub(safe_url(quoted), url_passwords(location))
            assert not leaked(password, said), (location, said)
        assert not leaked(password, safe_url(location)), location


@pytest.mark.parametrize(
    "location",
    [
        "host=/run/pg dbname='db2 password=Secr3tPw",
        "host='/run/pg password=Secr3tPw",
        "dbname='open password='Secr3tPw'",
    ],
)
def test_a_quote_left_open_before_a_password_hides_nothing_of_it(location):
    """libpq refuses an unterminated quote; the password after it is still a password."""
    assert "Secr3tPw" in url_passwords(location)
    assert not leaked("Secr3tPw", safe_url(location))


@pytest.mark.parametrize(
    ("location", "password"),
    [
        ("postgresql://u:Tr0ub/?abc&Staple@/db?host=/run/pg", "Tr0ub/?abc&Staple"),
        ("postgresql://u:Zq@/?#%:& x=1@/db?host=/run/pg", "Zq@/?#%:& x=1"),
    ],
)
def test_what_libpq_quotes_of_a_location_it_cannot_read_is_hidden_however_short(location, password):
    """An unencoded password's piece of 3 characters ("abc") in libpq's error is not said."""
    store = PostgresStore(location)
    assert not leaked(password, store.where)
    with pytest.raises(ConfigError) as info:
        store.describe()  # libpq reads the location before anything connects
    message = info.value.message
    assert message.startswith("cannot read the store's location ")
    quoted = re.findall(r'"([^"]*)"', message)
    assert quoted
    assert all(len(piece) < 2 or piece not in password for piece in quoted), message


@settings(max_examples=300)
@given(passwords, st.sampled_from(["db", "/run/pg", "a b"]))
def test_keyword_strings_are_read_as_libpq_reads_them(password, host):
    """Quoted values with escapes come back as written; a bare value ends at a space."""
    location = f"host = {keyword_quoted(host)} password={keyword_quoted(password)} port=5432"
    assert keyword_pairs(location) == [("host", host), ("password", password), ("port", "5432")]
    assert is_keyword_string(location)
    assert backend_for(location) is POSTGRESQL


@pytest.mark.parametrize(
    ("location", "pairs"),
    [
        ("host=db dbname=agents", [("host", "db"), ("dbname", "agents")]),
        (r"password=a\ b", [("password", "a b")]),
        ("", []),
        ("host=db x", None),  # a word without =
        ("host=db password='open", None),  # an unterminated quote
        ("=db", None),
    ],
)
def test_keyword_pairs(location, pairs):
    """keyword_pairs() reads what libpq reads, and nothing else."""
    assert keyword_pairs(location) == pairs


@pytest.mark.parametrize(
    ("location", "backend"),
    [
        ("host=/run/postgresql dbname=agents", POSTGRESQL),
        ("  service=agentops", POSTGRESQL),
        ("host=db password='open", None),
        ("./host=db", backend_for("/srv/state")),
    ],
)
def test_a_keyword_string_names_postgresql_never_a_directory(location, backend):
    """A location starting name= is PostgreSQL's, or no one's; ./name= is a directory."""
    assert backend_for(location) is backend


@pytest.mark.parametrize(
    ("location", "parsed", "wrong"),
    [
        ("postgresql://u:pw@db/agents", {"host": "db", "dbname": "agents"}, False),
        ("postgresql://u:a@b@db/agents", {"host": "b@db", "dbname": "agents"}, True),
        ("postgresql://u:a@b@/agents?host=/run/pg", {"host": "/run/pg"}, True),
        ("postgresql://u:a/b@db/agents", {"host": "u", "port": "a", "dbname": "b@db/agents"}, True),
        ("postgresql://db:5432/agents?user=me@corp", {"host": "db", "port": "5432"}, False),
        ("host=db password=a@b/c", {"host": "db", "password": "a@b/c"}, False),
    ],
)
def test_a_url_libpq_reads_otherwise_than_written_is_known(location, parsed, wrong):
    """An @ or / of a password read into the host, port or database: misread."""
    assert misread(location, parsed) is wrong


# -- the real thing ----------------------------------------------------------------------------


def located(url: str, password: str) -> dict[str, str]:
    """The spellings of ``password`` in the suite server's ``url`` (any password: it trusts)."""
    database, _, query = url.removeprefix("postgresql:///").partition("?")
    host = dict(part.split("=", 1) for part in query.split("&"))["host"]
    return spellings(password, user="postgres", database=database, host=host)


@pytest.mark.parametrize("state", ["ready", "bare", "missing"])
def test_a_password_of_every_special_character_is_never_printed_logged_or_kept(
    project, invoke, run_agentops, postgres, tmp_path, state
):
    """run, status, ledger, store init/check/copy, in every spelling: no piece of it anywhere.

    On a database ready for agentops, one without its tables, and one that
    does not exist: what succeeds names the store, what fails says why. The
    commands run in this process, and the unencoded spelling as cron runs them too.
    """
    project.add_agent("hello")
    url = postgres.database() if state != "bare" else postgres.database(init=False)
    if state == "missing":
        url = url.replace("/t_", "/missing_")
    commands = [("run", "hello"), ("status",), ("ledger", "hello"), ("store", "check", "--json")]
    outputs = []
    for spelled, location in located(url, PASSWORD).items():
        for command in [*commands, ("store", "init")]:
            done = invoke(*command, env={STORE_URL_ENV: location})
            outputs.append((spelled, command, done.exit_code, done.output))
        copied = invoke("store", "copy", "--to", location)
        outputs.append((spelled, "copy", copied.exit_code, copied.output))
    location = located(url, PASSWORD)["unencoded in the user info"]
    for command in commands:
        done = run_agentops(*command, env=cron_env(project.home, **{STORE_URL_ENV: location}))
        outputs.append(("cron", command, done.returncode, done.stdout + done.stderr))
    for spelled, command, code, text in outputs:
        assert not leaked(PASSWORD, text), (spelled, command, code, text)
        assert "Traceback" not in text
    kept = [p for p in project.home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in kept), "the runs were logged"
    for path in kept:
        assert not leaked(PASSWORD, path.read_text(errors="replace")), path
    assert not leaked(PASSWORD, " ".join(str(p) for p in Path.cwd().iterdir()))
    assert not list(tmp_path.glob("*password*")), "no directory named after a location"
