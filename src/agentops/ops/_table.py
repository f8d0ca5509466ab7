"""The report page's table of figures: a row per agent and one for all, each cell labelled.

Each cell carries its figure's key (``data-key``) and its heading
(``data-label``), which a phone shows beside the value when each row
becomes a card. Long durations and large counts are shortened to keep the
whole table in a 1280-pixel window; the cell's tooltip has them in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentops.ops._svg import escape
from agentops.ops.report import seconds, usd

if TYPE_CHECKING:
    from agentops.ops.report import Report

__all__ = ["TABLE_COLUMNS", "figures_table"]

TABLE_COLUMNS = (
    ("runs", "Runs"),
    ("success_rate", "Success"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("max", "Max"),
    ("errors", "Errors"),
    ("skipped", "Skipped"),
    ("retries", "Retries"),
    ("circuit_openings", "Circuit opened"),
    ("committed", "Actions committed"),
    ("actions_skipped", "Actions skipped"),
    ("undone", "Actions undone"),
    ("tokens", "Tokens"),
    ("cost_usd", "Cost"),
    ("confidence", "Confidence (mean)"),
    ("held", "Held"),
    ("escalated", "Escalated"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
)
"""The table's columns: the ``data-key`` of each cell, and its heading."""

_LONG = ((86400, "d"), (3600, "h"), (60, "min"))


def _duration(value: float | None) -> str:
    """A duration in a table cell: as :func:`seconds` up to 100 s, then in larger units."""
    if value is None or value < 100:  # noqa: PLR2004
        return seconds(value)
    unit, name = next((unit, name) for unit, name in _LONG if value >= 2 * unit or name == "min")
    amount = value / unit
    return f"{amount:,.0f} {name}" if amount >= 10 else f"{amount:.1f} {name}"  # noqa: PLR2004


def _amount(value: int) -> str:
    """A count in a table cell: in full up to 100,000, then ``328M`` (the title has it in full)."""
    if value < 100_000:  # noqa: PLR2004
        return f"{value:,}"
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:,}"  # pragma: no cover - every value from 100,000 has a suffix above


def _cells(figures: dict[str, Any]) -> dict[str, str]:
    duration, actions, review = figures["duration_s"], figures["actions"], figures["review"]
    rate, confidence = figures["success_rate"], figures["confidence"]["mean"]
    return {
        "runs": f"{figures['runs']:,}",
        "success_rate": "-" if rate is None else f"{rate * 100:.1f}%",
        "p50": _duration(duration["p50"]),
        "p95": _duration(duration["p95"]),
        "max": _duration(duration["max"]),
        "errors": f"{figures['errors']['total']:,}",
        "skipped": f"{figures['statuses']['skipped']:,}",
        "retries": f"{figures['retries']['total']:,}",
        "circuit_openings": f"{figures['circuit_openings']:,}",
        "committed": f"{actions['committed']:,}",
        "actions_skipped": f"{actions['skipped']:,}",
        "undone": f"{actions['undone']:,}",
        "tokens": _amount(figures["tokens"]),
        "cost_usd": usd(figures["cost_usd"]),
        "confidence": "-" if confidence is None else f"{confidence:.2f}",
        "held": f"{review['held']:,}",
        "escalated": f"{review['escalated']:,}",
        "approved": f"{review['approved']:,}",
        "rejected": f"{review['rejected']:,}",
    }


def _exact(figures: dict[str, Any]) -> dict[str, str]:
    """The figures a cell rounds to fewer digits, in full (for its tooltip)."""
    duration = figures["duration_s"]
    exact = {key: seconds(duration[key]) for key in ("p50", "p95", "max")}
    return exact | {"tokens": f"{figures['tokens']:,} tokens"}


def _row(figures: dict[str, Any], first: str, attrs: str) -> str:
    cells, exact = _cells(figures), _exact(figures)
    tds = "".join(
        f'<td data-key="{key}" data-label="{escape(heading)}"'
        + (f' title="{escape(exact[key])}"' if exact.get(key, cells[key]) != cells[key] else "")
        + f">{escape(cells[key])}</td>"
        for key, heading in TABLE_COLUMNS
    )
    return f"<tr {attrs}><td>{first}</td>{tds}</tr>"


def figures_table(report: Report) -> str:
    """The table of figures: a row per agent, and one for all of them."""
    head = "".join(f"<th>{escape(heading)}</th>" for _, heading in TABLE_COLUMNS)
    rows = "\n".join(
        _row(figures, escape(name), f'data-agent="{escape(name)}"')
        for name, figures in report.agents.items()
    )
    total = _row(report.total, "All agents", 'class="total"')
    return (
        '<div class="figures"><table>'
        f"<thead><tr><th>Agent</th>{head}</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n<tfoot>{total}</tfoot></table></div>"
    )
