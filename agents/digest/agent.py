"""digest: a report writer that works offline.

Each run reads the notes (``*.md``, first line is the title) that arrived in
the inbox since the last run, and writes them as one Markdown digest into the
outbox. The names of digested notes are kept in ``ctx.state``, so a note is
never digested twice; they are saved only when the run succeeds, so a failed
or rejected run leaves them to the next one.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from agentops import Context

# Keeps the state file small however long the agent runs: clear digested notes
# out of the inbox before it holds this many.
SEEN_LIMIT = 5000


class Params(BaseModel):
    """Where notes come from and where digests go, relative to the project."""

    inbox: Path
    outbox: Path
    max_items: int = Field(50, ge=1, le=500)


class Result(BaseModel):
    """The digest written (if there was anything new) and what went into it."""

    digest: str | None
    items: list[str]
    remaining: int


def run(params: Params, ctx: Context) -> Result:
    """Digest the notes not seen before, oldest name first."""
    inbox = ctx.home / params.inbox
    seen = set(ctx.state.get("seen", []))
    new = sorted(p for p in inbox.glob("*.md") if p.name not in seen and _utf8(p.name, ctx))
    batch, remaining = new[: params.max_items], len(new) - params.max_items
    ctx.log.info("digest.collected", new=len(new), batch=len(batch))
    if not batch:
        return Result(digest=None, items=[], remaining=0)

    lines = [f"# Digest {ctx.now:%Y-%m-%d %H:%M} UTC", ""]
    for note in batch:
        title, _, body = note.read_text(encoding="utf-8").partition("\n")
        lines += [f"## {title.lstrip('# ').strip() or note.stem}", ""]
        # Quoted, so a heading inside a note cannot pass for a section of ours.
        lines += [f"> {line}".rstrip() for line in body.strip().splitlines()] + [""]
    path = ctx.home / params.outbox / f"digest-{ctx.run_id}.md"
    if not ctx.dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
        ctx.state["seen"] = [*ctx.state.get("seen", []), *(n.name for n in batch)][-SEEN_LIMIT:]
    return Result(
        digest=str(path.relative_to(ctx.home)),
        items=[n.name for n in batch],
        remaining=max(remaining, 0),
    )


def _utf8(name: str, ctx: Context) -> bool:
    # A name in another encoding could not be remembered as seen, and would be
    # digested again on every run: leave it out, and say so.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        ctx.log.warning("digest.skipped", note=name, reason="file name is not UTF-8")
        return False
    return True


def validate(result: Result, ctx: Context) -> None:
    """Refuse a digest that lost notes on the way to disk."""
    if result.digest is None or ctx.dry_run:
        return
    text = (ctx.home / result.digest).read_text(encoding="utf-8")
    sections = text.count("\n## ")
    if sections != len(result.items):
        raise ValueError(f"{result.digest} has {sections} sections for {len(result.items)} notes")


def rollback(result: Result, ctx: Context) -> None:
    """Remove a rejected digest; its notes stay unseen and go into the next one."""
    if isinstance(result, Result) and result.digest:
        (ctx.home / result.digest).unlink(missing_ok=True)
