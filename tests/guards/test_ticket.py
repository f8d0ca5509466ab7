"""An action's ticket: one idempotency key per action, handed to ``do`` only when it takes one."""

from __future__ import annotations

import functools
import re

from agentops import Ticket
from agentops.guards.ticket import idempotency_key, takes_ticket
from agentops.model.ledger import Entry
from suite import agent_source

TICKETED = agent_source(
    """
    def do(ticket: Ticket) -> list:
        return list(ticket)  # a field named *token would be redacted from the ledger
    plain = ctx.action("plain", key=params.key, do=lambda: "no ticket")
    assert plain == "no ticket"
    return Result(ticket=ctx.action("publish", key=params.key, do=do))
    """,
    params='key: str = "k"',
    result="ticket: list",
    imports="from agentops import Ticket",
)


def test_the_idempotency_key_names_the_agent_action_and_key_only():
    """The same for one action on any run or host; different as soon as one part differs."""
    key = idempotency_key("agent", "publish", "item-1")
    assert key == idempotency_key("agent", "publish", "item-1")
    assert key.startswith("agentops-")
    assert len(key) == len("agentops-") + 64
    others = {
        idempotency_key("other", "publish", "item-1"),
        idempotency_key("agent", "post", "item-1"),
        idempotency_key("agent", "publish", "item-2"),
        idempotency_key("agent", "publish\0item", "1"),
        idempotency_key("agent", "publish", "item-1 "),
    }
    assert key not in others
    assert len(others) == 5


def test_the_idempotency_key_says_nothing_of_the_key_and_fits_any_header():
    """A digest: the action's key (it may hold a secret's digest) is not in it, nor any odd byte."""
    secret = "sk-live-0123456789 \u00e9\n"
    key = idempotency_key("agent", "charge", secret)
    assert "sk-live" not in key
    assert "0123456789" not in key
    assert re.fullmatch(r"agentops-[0-9a-f]{64}", key)


def test_do_is_handed_the_ticket_only_when_it_has_a_parameter_to_fill():
    def optional(x: int = 1) -> int:
        return x

    def keyword_only(*, ticket: object) -> object:
        return ticket

    assert takes_ticket(lambda ticket: ticket)
    assert takes_ticket(functools.partial(lambda _a, ticket: ticket, 1))
    assert not takes_ticket(lambda: None)
    assert not takes_ticket(optional)
    assert not takes_ticket(keyword_only)
    assert not takes_ticket(functools.partial(lambda a: a, 1))
    assert not takes_ticket(dict)


def test_a_run_hands_do_its_ticket_and_the_token_grows_with_each_lease(project):
    """On the file store: the key is the action's, the token the lease's; do() alone still works."""
    project.add_agent("ticketed", TICKETED)
    tickets = []
    for key in ("a", "b"):
        outcome = project.run("ticketed", overrides={"key": key})
        assert outcome.exit_code == 0, outcome.message
        line = project.ledger("ticketed")["publish"][key]
        tickets.append(Ticket(*Entry.parse(line).result))
    assert [t.idempotency_key for t in tickets] == [
        idempotency_key("ticketed", "publish", "a"),
        idempotency_key("ticketed", "publish", "b"),
    ]
    assert tickets[0].fencing_token < tickets[1].fencing_token
