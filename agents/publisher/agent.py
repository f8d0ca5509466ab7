"""publisher: publishes each item of a local feed into an outbox, exactly once.

Every item is published through ``ctx.action("publish", key=item id, ...)``:
agentops journals an intent before the file is written and a commit after,
so a run killed at any moment never publishes an item twice, and the next
run publishes the rest. If the process died in the middle of writing a file,
``reconcile()`` looks at the outbox and says whether that item made it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, Field

from agentops import Context


class Params(BaseModel):
    """The feed to read, the outbox to publish into, and a pause between items."""

    feed: Path
    outbox: Path
    delay: float = Field(0.0, ge=0, le=60)


class Item(BaseModel):
    """One feed entry."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    title: str
    body: str = ""


class Result(BaseModel):
    """What this run published, and how many items had been published before."""

    published: list[str]
    already: int


def run(params: Params, ctx: Context) -> Result:
    """Publish every feed item that is not published yet."""
    items = [Item.model_validate(raw) for raw in json.loads((ctx.home / params.feed).read_text())]
    outbox = ctx.home / params.outbox
    published, already = [], 0
    for item in items:
        receipt = ctx.action(
            "publish",
            key=item.id,
            do=lambda item=item: _publish(ctx.home, outbox, item, ctx.run_id),
            undo=lambda receipt: (ctx.home / receipt["path"]).unlink(missing_ok=True),
        )
        if ctx.dry_run:
            continue
        # A receipt from an earlier run (or None, for an item an operator marked
        # done with `agentops ledger --resolve`): published before.
        if receipt is None or receipt["run_id"] != ctx.run_id:
            already += 1
            continue
        published.append(item.id)
        time.sleep(params.delay)
    return Result(published=published, already=already)


def validate(result: Result, ctx: Context) -> None:
    """Every item this run published is in the outbox."""
    outbox = ctx.home / ctx.params.outbox
    missing = [key for key in result.published if not (outbox / f"{key}.md").exists()]
    if missing:
        raise ValueError(f"published but missing from the outbox: {missing}")


def reconcile(name: str, key: str, ctx: Context) -> dict[str, str] | bool:
    """After a crash inside _publish(): the receipt if the item reached the outbox."""
    target = ctx.home / ctx.params.outbox / f"{key}.md"
    if not target.exists():
        return False  # not published: the next ctx.action publishes it
    return {"path": str(target.relative_to(ctx.home)), "run_id": "reconciled"}


def _publish(home: Path, outbox: Path, item: Item, run_id: str) -> dict[str, str]:
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox / f"{item.id}.md"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(f"# {item.title}\n\n{item.body}\n", encoding="utf-8")
    tmp.replace(target)  # whole or not at all: what reconcile() relies on
    return {"path": str(target.relative_to(home)), "run_id": run_id}
