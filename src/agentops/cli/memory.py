"""Seeing what an agent remembers: ``agentops memory``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from agentops.cli._common import clip, local_time, print_table, project_of, reports_errors

if TYPE_CHECKING:
    from agentops.ops.memory import MemoryView

__all__ = ["memory"]


@click.command()
@click.argument("agent")
@click.option("--search", metavar="QUERY", help="Rank the notes for QUERY, as relevant() does.")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1_000_000),
    default=20,  # ops.memory.DEFAULT_LIMIT, not imported: every command would pay for it
    show_default=True,
    help="Show at most this many notes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (documented keys).")
@click.pass_context
@reports_errors
def memory(ctx: click.Context, agent: str, search: str | None, limit: int, as_json: bool) -> None:
    """Show AGENT's working memory and its notes: newest first, or ranked by --search.

    Reads only: no agent code runs, no lock is taken, nothing is written.
    """
    from agentops.ops.memory import read_memory  # noqa: PLC0415

    view = read_memory(project_of(ctx), agent, now=datetime.now(UTC), search=search, limit=limit)
    if as_json:
        click.echo(json.dumps(view.row(), indent=2, ensure_ascii=False))
        return
    _print(view)


def _print(view: MemoryView) -> None:
    from agentops._infra.terminal import printable  # noqa: PLC0415

    row = view.row()
    working = row["working"]
    click.echo(f"working memory: {len(working) or 'none'}")
    if working:
        print_table(
            ["KEY", "EXPIRES", "VALUE"],
            [
                [
                    clip(printable(entry["key"]), 30),
                    local_time(entry["expires_at"]),
                    clip(printable(json.dumps(entry["value"], ensure_ascii=False)), 70),
                ]
                for entry in working
            ],
        )
    notes = row["notes"]
    order = "newest first" if view.search is None else f"best first for {view.search!r}"
    shown = f"{len(notes)} of {view.notes_total}, {order}" if notes else "none"
    if not notes and view.search is not None and view.notes_total:
        shown = f"none of {view.notes_total} match {view.search!r}"
    click.echo(f"\nnotes: {printable(shown)}")
    if not notes:
        return
    header = ["AT", "IMPORTANCE", "TAGS", "TEXT"]
    rows = [
        [
            local_time(note["at"]),
            str(note["importance"]),
            clip(printable(",".join(note["tags"])), 24),
            clip(printable(" ".join(note["text"].split())), 70),
        ]
        for note in notes
    ]
    if view.search is not None:
        header.insert(0, "SCORE")
        for line, note in zip(rows, notes, strict=True):
            line.insert(0, f"{note['score']:.3f}")
    print_table(header, rows)
