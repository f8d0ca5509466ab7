"""triage: a model that reads the support inbox and acts on it, within limits.

Each run takes the items of the inbox (a JSON file) it has not triaged yet
and lets a model decide, with three tools, each as far-reaching as it says:

- ``search_items`` is read-only: the model may call it whenever it likes;
- ``post_reply`` has an effect (``@tool(effect=True, key="item_id")``): it
  writes one reply per item, exactly once, however often the run is retried
  or the model asks;
- ``close_item`` is destructive (``@tool(confirm=True)``): the model's call
  is held for ``agentops review``, and the item is closed only when a human
  approves it.

The items triaged are kept in ``ctx.state``; a run that stops at a held call
triages them again next time, and finds the replies already written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agentops import Context, tool


class Params(BaseModel):
    """Where the items are, and where replies and closings go (relative to the home)."""

    items: str = "agents/triage/items.json"
    outbox: str = "agents/triage/out"
    max_items: int = Field(10, ge=1, le=100)


class Triage(BaseModel):
    """What the model answers for one item, once it is done with the tools."""

    action: Literal["replied", "closed", "escalated", "none"]
    note: str = Field(max_length=300)


class Result(BaseModel):
    """The items triaged this run, each with what was done."""

    triaged: dict[str, Triage]


def _path(ctx: Context, relative: str) -> Path:
    path = Path(relative)
    return path if path.is_absolute() else ctx.home / path


def _items(ctx: Context) -> list[dict[str, str]]:
    params = ctx.params
    assert isinstance(params, Params)  # noqa: S101 - the run validated them
    return json.loads(_path(ctx, params.items).read_text(encoding="utf-8"))


def _write(ctx: Context, name: str, record: dict[str, str]) -> None:
    params = ctx.params
    assert isinstance(params, Params)  # noqa: S101 - the run validated them
    outbox = _path(ctx, params.outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    with (outbox / name).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def search_items(query: str, ctx: Context, limit: int = 5) -> list[dict[str, str]]:
    """Search the inbox by words of the subject, body or sender.

    Use it to find earlier items from the same sender or about the same order.
    """
    words = query.lower().split()
    found = [
        item
        for item in _items(ctx)
        if any(word in " ".join(item.values()).lower() for word in words)
    ]
    return found[:limit]


@tool(effect=True, key="item_id")
def post_reply(item_id: str, text: str, ctx: Context) -> dict[str, str]:
    """Send the reply to an item's sender. Use it once per item, when you know the answer."""
    _write(ctx, "replies.jsonl", {"item": item_id, "text": text})
    return {"sent": item_id}


@tool(confirm=True)
def close_item(item_id: str, reason: Literal["spam", "duplicate"], ctx: Context) -> str:
    """Close an item for good. Only for spam or a duplicate: a human approves every closing."""
    _write(ctx, "closed.jsonl", {"item": item_id, "reason": reason})
    return f"{item_id} closed"


PROMPT = (
    "You triage a support inbox. For the item below, search earlier items if that helps, "
    "reply to a real question with post_reply, ask to close spam or a duplicate with "
    "close_item, then say what you did.\n\n{item}"
)


def run(params: Params, ctx: Context) -> Result:
    """Triage each item not triaged yet, at most ``max_items`` of them."""
    done: list[str] = ctx.state.setdefault("triaged", [])
    triaged: dict[str, Triage] = {}
    for item in [i for i in _items(ctx) if i["id"] not in done][: params.max_items]:
        shown = ctx.llm.untrusted(json.dumps(item), source=f"item {item['id']}")
        triaged[item["id"]] = ctx.llm.run(
            PROMPT.format(item=shown),
            tools=[search_items, post_reply, close_item],
            schema=Triage,
            max_steps=6,
        )
        done.append(item["id"])
    return Result(triaged=triaged)
