"""Least privilege: the hosts ``ctx.http`` may reach, and the modes of what a run creates.

:class:`HostPolicy` is checked with an injected resolver, so a test decides
what a name resolves to; ``ctx.http`` is checked against a real server on
loopback, redirects included, and the server says whether a request arrived.
"""

from __future__ import annotations

import os
import stat

import pytest

from agentops.guards.permissions import HostPolicy
from faultserver import FaultServer, Reply, ok
from suite import agent_source

PUBLIC = "93.184.216.34"


def resolver(answers: dict[str, list[str]]):
    """A resolver answering from ``answers``, remembering what it was asked."""

    def resolve(host: str) -> list[str]:
        resolve.asked.append(host)
        return answers.get(host, [])

    resolve.asked = []
    return resolve


def refuses(allowed: list[str], host: str, answers: dict[str, list[str]] | None = None) -> bool:
    return HostPolicy(allowed, resolve=resolver(answers or {})).refusal(host) is not None


# -- names, wildcards, addresses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("api.example.com", False),
        ("API.Example.COM.", False),
        ("other.example.com", True),
        ("example.com", True),
        ("api.example.com.evil.net", True),
    ],
)
def test_an_exact_name_allows_that_name_only(host, refused):
    """A listed name matches itself (any case, a trailing dot), never a neighbour."""
    assert refuses(["api.example.com"], host, {host: [PUBLIC]}) is refused


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("a.example.org", False),
        ("deep.a.example.org", False),
        ("example.org", True),
        ("evilexample.org", True),
        ("a.example.org.evil.net", True),
    ],
)
def test_a_wildcard_allows_subdomains_not_the_name_itself(host, refused):
    """*.example.org matches its subdomains at any depth, not example.org nor look-alikes."""
    assert refuses(["*.example.org"], host, {host: [PUBLIC]}) is refused


@pytest.mark.parametrize(
    ("host", "refused"),
    [("10.1.2.3", False), ("10.1.3.1", True), ("2001:db8::5", False), ("[2001:db8::5]", False)],
)
def test_addresses_are_allowed_by_the_networks_listed(host, refused):
    """IP entries are networks: 10.1.2.0/24 allows 10.1.2.3, not 10.1.3.1; IPv6 alike."""
    assert refuses(["10.1.2.0/24", "2001:db8::/32"], host) is refused


UNSPECIFIED = "0.0.0.0"  # noqa: S104 - a host to refuse, not an address to bind


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "169.254.169.254", UNSPECIFIED, PUBLIC]
)
def test_an_address_not_listed_is_refused_loopback_and_private_included(host):
    """An address is allowed only by a network listed: loopback and metadata ones too."""
    policy = HostPolicy(["*.example.org", "api.example.com"], resolve=resolver({}))
    assert policy.refusal(host) == f"{host} is not in [permissions] hosts"


def test_loopback_is_allowed_when_listed():
    """Listing 127.0.0.1 (or its network) is how a local service is reached."""
    assert not refuses(["127.0.0.1"], "127.0.0.1")
    assert not refuses(["127.0.0.0/8"], "127.0.0.2")


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["10.0.0.5"],
        [PUBLIC, "192.168.0.9"],
        ["fe80::1%eth0"],
        ["100.64.1.2"],
        ["::ffff:127.0.0.1"],
        ["::ffff:169.254.169.254"],
        ["0.0.0.0"],  # noqa: S104 - an answer to refuse, not a bind
        ["fd00::1"],
        ["224.0.0.1"],
    ],
    ids=[
        "loopback",
        "metadata",
        "private",
        "one-of-several",
        "link-local-with-zone",
        "shared-cgnat",
        "ipv4-mapped-loopback",
        "ipv4-mapped-metadata",
        "unspecified",
        "unique-local",
        "multicast",
    ],
)
def test_a_wildcard_name_resolving_to_an_internal_address_is_refused(answers):
    """A DNS answer cannot turn an allowed x.example.org into an internal service."""
    policy = HostPolicy(["*.example.org"], resolve=resolver({"x.example.org": answers}))
    refusal = policy.refusal("x.example.org")
    assert refusal is not None
    assert refusal.startswith("x.example.org resolves to ")
    assert refusal.endswith(", an internal address not in [permissions] hosts")


def test_a_wildcard_name_resolving_to_a_listed_network_is_allowed():
    """An internal address the operator listed is theirs to reach, by a wildcard name too."""
    policy = HostPolicy(
        ["*.corp.example", "10.0.0.0/8"], resolve=resolver({"db.corp.example": ["10.2.3.4"]})
    )
    assert policy.refusal("db.corp.example") is None


def test_a_wildcard_name_resolving_to_a_public_address_is_allowed():
    """The common case: an allowed name with a public address."""
    assert not refuses(["*.example.org"], "api.example.org", {"api.example.org": [PUBLIC]})


def test_an_exact_name_is_never_resolved():
    """A name the operator listed exactly may resolve anywhere, localhost included: no lookup."""
    resolve = resolver({"localhost": ["127.0.0.1"]})
    policy = HostPolicy(["localhost", "*.example.org"], resolve=resolve)
    assert policy.refusal("localhost") is None
    assert resolve.asked == []


def test_a_host_is_judged_once_per_run():
    """Each host is resolved once: every request of a run gets the same verdict."""
    resolve = resolver({"a.example.org": [PUBLIC]})
    policy = HostPolicy(["*.example.org"], resolve=resolve)
    assert [policy.refusal("a.example.org") for _ in range(3)] == [None, None, None]
    assert resolve.asked == ["a.example.org"]


# -- ctx.http against a real server ------------------------------------------------------

FETCHER = agent_source(
    """
    try:
        return Result(status=ctx.http.get(params.url).status_code)
    except Exception:  # the refusal is not an Exception: this does not swallow it
        return Result(status=0)
    """,
    params="url: str",
    result="status: int",
    imports="import httpx",
)


def test_a_host_not_listed_is_refused_before_any_connection(project, clock):
    """hosts = ["api.example.com"]: a request to the loopback server never reaches it."""
    project.add_agent("agent", FETCHER, '[permissions]\nhosts = ["api.example.com"]\n')
    with FaultServer() as server:
        url = server.script("/feed", ok())
        outcome = project.run(clock=clock, overrides={"url": url})
        assert server.requests == []
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.message == ("agent: request refused: 127.0.0.1 is not in [permissions] hosts")
    denied = next(e for e in project.events("agent") if e["event"] == "guard.denied")
    assert denied["host"] == "127.0.0.1"
    assert "http.request" not in project.event_names("agent")


def test_a_listed_loopback_address_is_reached(project, clock):
    """hosts = ["127.0.0.1"]: the same request goes through and is logged."""
    project.add_agent("agent", FETCHER, '[permissions]\nhosts = ["127.0.0.1"]\n')
    with FaultServer() as server:
        url = server.script("/feed", ok())
        outcome = project.run(clock=clock, overrides={"url": url})
        assert len(server.hits("/feed")) == 1
    assert outcome.exit_code == 0
    assert project.events("agent")[-1]["result"] == {"status": 200}


def test_a_redirect_to_a_host_not_listed_is_refused_before_it_is_followed(project, clock):
    """A listed host redirecting to an unlisted one: the redirect is never requested."""
    project.add_agent("agent", FETCHER, '[permissions]\nhosts = ["127.0.0.1"]\n')
    with FaultServer() as server:
        elsewhere = server.url("/secret").replace("127.0.0.1", "localhost")
        server.script("/secret", ok({"leaked": True}))
        url = server.script(
            "/start", Reply(status=302, body=b"", headers=(("Location", elsewhere),))
        )
        outcome = project.run(clock=clock, overrides={"url": url})
        assert [r.path for r in server.requests] == ["/start"]
    assert outcome.exit_code == 1
    assert outcome.message == "agent: request refused: localhost is not in [permissions] hosts"
    assert "guard.denied" in project.event_names("agent")


# -- what a run creates is its owner's only ------------------------------------------------

ACTING = agent_source(
    """
    ctx.action("publish", ctx.run_id, do=lambda: "done")
    return Result(ok=True)
    """,
    result="ok: bool",
)


@pytest.fixture
def open_umask():
    """A umask that hides nothing: modes must come from agentops, not from the umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_files_a_run_creates_are_0600_and_directories_0700(project, clock):
    """State, ledger, backups, lock, attempt and log: owner only, whatever the umask."""
    project.add_agent("agent", ACTING)
    assert project.run(clock=clock).exit_code == 0
    assert project.run(clock=clock).exit_code == 0  # the second save leaves .bak files
    created = [p for d in ("state", "logs") for p in (project.home / d).rglob("*")]
    names = {p.name for p in created}
    assert {"agent.json", "agent.json.bak", "agent.ledger.json", "agent.lock"} <= names
    assert {"agent.attempt.json", "agent.jsonl"} <= names
    modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in created}
    assert modes == dict.fromkeys(names, 0o600)
    for directory in ("state", "logs"):
        assert stat.S_IMODE((project.home / directory).stat().st_mode) == 0o700
