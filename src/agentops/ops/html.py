"""The report as one self-contained HTML page: ``agentops report --html FILE``.

One file a person can open or mail around: inline CSS and inline SVG only,
no script, no font, no image, nothing fetched (a Content-Security-Policy
says so to the browser too). Three charts (invocations over time stacked by
status, the duration of each run, the cost of each day), the table of
figures, and the commonest errors.

Everything that comes from a log is untrusted (agent output, error messages,
even a status a hand-edited line claims): it is HTML-escaped wherever it is
written, in text and in attributes alike, and only known statuses pick a
colour.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentops import __version__
from agentops.model.status import RunStatus
from agentops.ops.report import seconds, usd

if TYPE_CHECKING:
    from agentops.ops.report import Report
    from agentops.ops.tally import Point

__all__ = ["MAX_POINTS", "STATUS_COLOURS", "TABLE_COLUMNS", "render_html"]

STATUS_COLOURS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.HELD: "#1976d2",
    RunStatus.FAILED: "#c62828",
    RunStatus.TIMEOUT: "#ad1457",
    RunStatus.INTERRUPTED: "#6a1b9a",
    RunStatus.ESCALATED: "#ef6c00",
    RunStatus.CRASHED: "#4e342e",
    RunStatus.REJECTED: "#f9a825",
    RunStatus.RATE_LIMITED: "#00838f",
    RunStatus.BUDGET_EXCEEDED: "#827717",
    RunStatus.SKIPPED: "#9e9e9e",
    RunStatus.ABORTED: "#37474f",
}
"""The colour of each status in the charts, stacked in this order from the bottom."""

COST_COLOUR = "#5c6bc0"

MAX_POINTS = 5000
"""The duration chart shows at most this many runs, the most recent."""

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

_WIDTH, _HEIGHT = 760, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 30
_PLOT_W, _PLOT_H = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
_BASE = _TOP + _PLOT_H
_MID = _TOP + _PLOT_H / 2

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121;
       margin: 2em auto; max-width: 1100px; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.period { color: #616161; margin-top: 0; }
svg { width: 100%; max-width: 760px; height: auto; display: block; }
svg text { font-size: 11px; fill: #616161; }
.legend { list-style: none; padding: 0; margin: 0.4em 0; }
.legend li { display: inline-block; margin-right: 1em; font-size: 0.9em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em;
          vertical-align: middle; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #e0e0e0; padding: 0.3em 0.5em; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f5f5f5; }
tfoot td { font-weight: bold; background: #fafafa; }
.figures { overflow-x: auto; }
code { white-space: pre-wrap; word-break: break-word; }
footer { color: #9e9e9e; font-size: 0.8em; margin-top: 3em; }
"""


def _e(value: object) -> str:
    """Text (or an attribute value) safe to put in HTML: agent output is untrusted."""
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _nice_max(value: float) -> float:
    """An axis top: the least 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _label(moment: datetime, bucket: str) -> str:
    return f"{moment:%m-%d %Hh}" if bucket == "hour" else f"{moment:%m-%d}"


def _frame(title: str, y_top: str, labels: list[tuple[float, str]], body: list[str]) -> str:
    """An SVG chart: axes, the top of the y axis, labels under the x axis, and the marks."""
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
            f'role="img" aria-label="{_e(title)}">'
        ),
        f"<title>{_e(title)}</title>",
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + _PLOT_H}" stroke="#bdbdbd"/>',
        f'<line x1="{_LEFT}" y1="{_BASE}" x2="{_LEFT + _PLOT_W}" y2="{_BASE}" stroke="#bdbdbd"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT + _PLOT_W}" y2="{_TOP}" stroke="#eeeeee"/>',
        f'<line x1="{_LEFT}" y1="{_MID}" x2="{_LEFT + _PLOT_W}" y2="{_MID}" stroke="#eeeeee"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 10}" text-anchor="end">{_e(y_top)}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + _PLOT_H}" text-anchor="end">0</text>',
    ]
    parts += [
        f'<text x="{x:.1f}" y="{_HEIGHT - 10}" text-anchor="middle">{_e(text)}</text>'
        for x, text in labels
    ]
    parts += body
    parts.append("</svg>")
    return "\n".join(parts)


def _empty(title: str, what: str) -> str:
    return _frame(
        title,
        "",
        [],
        [
            (
                f'<text class="empty" x="{_LEFT + _PLOT_W / 2}" y="{_TOP + _PLOT_H / 2}" '
                f'text-anchor="middle">{_e(what)}</text>'
            )
        ],
    )


def _x_labels(starts: list[datetime], bucket: str, width: float) -> list[tuple[float, str]]:
    every = max(1, len(starts) // 8)
    return [
        (_LEFT + (i + 0.5) * width, _label(start, bucket))
        for i, start in enumerate(starts)
        if i % every == 0
    ]


def _runs_chart(report: Report) -> str:
    title = f"Invocations per {report.bucket}, by how they ended"
    starts = report.buckets()
    runs = report.series.runs
    if not runs or not starts:
        return _empty(title, "no invocation in this period")
    top = _nice_max(max(sum(counts.values()) for counts in runs.values()))
    width = _PLOT_W / len(starts)
    gap = 1.0 if width > 4 else 0.0  # noqa: PLR2004 - thin bars touch
    body = []
    for i, start in enumerate(starts):
        counts = runs.get(start)
        if not counts:
            continue
        y = float(_TOP + _PLOT_H)
        for status, colour in STATUS_COLOURS.items():
            count = counts.get(status, 0)
            if not count:
                continue
            height = count / top * _PLOT_H
            y -= height
            body.append(
                f'<rect class="bar" data-status="{_e(status)}" data-count="{count}" '
                f'data-at="{_e(start.isoformat())}" x="{_LEFT + i * width + gap / 2:.2f}" '
                f'y="{y:.2f}" width="{max(width - gap, 0.5):.2f}" height="{height:.2f}" '
                f'fill="{colour}"><title>{_e(_label(start, report.bucket))}: {count} '
                f"{_e(status)}</title></rect>"
            )
    return _frame(title, _num(top), _x_labels(starts, report.bucket, width), body)


def _durations_chart(report: Report) -> str:
    title = "Duration of each run (seconds)"
    points: list[Point] = sorted(report.series.points, key=lambda p: p.at)[-MAX_POINTS:]
    if not points:
        return _empty(title, "no run with a duration in this period")
    span = (report.until - report.since).total_seconds() or 1.0
    top = _nice_max(max(point.duration_s for point in points))
    body = []
    p95 = report.total["duration_s"]["p95"]
    if p95 is not None:
        y = _TOP + _PLOT_H - p95 / top * _PLOT_H
        body.append(
            f'<line class="p95" x1="{_LEFT}" y1="{y:.2f}" x2="{_LEFT + _PLOT_W}" y2="{y:.2f}" '
            f'stroke="#757575" stroke-dasharray="4 3"><title>p95 {seconds(p95)}</title></line>'
        )
        body.append(
            f'<text x="{_LEFT + _PLOT_W}" y="{y - 3:.2f}" text-anchor="end">'
            f"p95 {seconds(p95)}</text>"
        )
    for point in points:
        x = _LEFT + (point.at - report.since).total_seconds() / span * _PLOT_W
        y = _TOP + _PLOT_H - point.duration_s / top * _PLOT_H
        colour = STATUS_COLOURS.get(RunStatus(point.status), "#000000")
        body.append(
            f'<circle class="point" data-status="{_e(point.status)}" '
            f'data-duration="{point.duration_s:g}" cx="{x:.2f}" cy="{y:.2f}" r="3" '
            f'fill="{colour}" fill-opacity="0.75"><title>{_e(point.agent)} '
            f"{_e(point.run_id)}: {seconds(point.duration_s)}, {_e(point.status)}</title></circle>"
        )
    days = report.days()
    labels = [
        (_LEFT + (day - report.since).total_seconds() / span * _PLOT_W, _label(day, "day"))
        for day in days[:: max(1, len(days) // 8)]
        if day >= report.since
    ]
    return _frame(title, _num(top), labels, body)


def _cost_chart(report: Report) -> str:
    title = "Cost per day (USD)"
    cost = report.series.cost
    days = report.days()
    if not any(cost.values()) or not days:
        return _empty(title, "nothing spent in this period")
    top = _nice_max(max(cost.values()))
    width = _PLOT_W / len(days)
    gap = 1.0 if width > 4 else 0.0  # noqa: PLR2004 - thin bars touch
    body = []
    for i, day in enumerate(days):
        spent = cost.get(day, 0.0)
        if spent <= 0:
            continue
        height = spent / top * _PLOT_H
        body.append(
            f'<rect class="cost" data-day="{day:%Y-%m-%d}" data-usd="{spent:.6f}" '
            f'x="{_LEFT + i * width + gap / 2:.2f}" y="{_TOP + _PLOT_H - height:.2f}" '
            f'width="{max(width - gap, 0.5):.2f}" height="{height:.2f}" fill="{COST_COLOUR}">'
            f"<title>{day:%Y-%m-%d}: {usd(spent)}</title></rect>"
        )
    return _frame(title, usd(top), _x_labels(days, "day", width), body)


def _legend(report: Report) -> str:
    seen = {status for counts in report.series.runs.values() for status in counts}
    items = [
        f'<li data-status="{_e(status)}"><span class="swatch" style="background:{colour}">'
        f"</span>{_e(status)}</li>"
        for status, colour in STATUS_COLOURS.items()
        if status in seen
    ]
    return f'<ul class="legend">{"".join(items)}</ul>' if items else ""


def _cells(figures: dict[str, Any]) -> dict[str, str]:
    duration, actions, review = figures["duration_s"], figures["actions"], figures["review"]
    rate, confidence = figures["success_rate"], figures["confidence"]["mean"]
    return {
        "runs": f"{figures['runs']:,}",
        "success_rate": "-" if rate is None else f"{rate * 100:.1f}%",
        "p50": seconds(duration["p50"]),
        "p95": seconds(duration["p95"]),
        "max": seconds(duration["max"]),
        "errors": f"{figures['errors']['total']:,}",
        "skipped": f"{figures['statuses']['skipped']:,}",
        "retries": f"{figures['retries']['total']:,}",
        "circuit_openings": f"{figures['circuit_openings']:,}",
        "committed": f"{actions['committed']:,}",
        "actions_skipped": f"{actions['skipped']:,}",
        "undone": f"{actions['undone']:,}",
        "tokens": f"{figures['tokens']:,}",
        "cost_usd": usd(figures["cost_usd"]),
        "confidence": "-" if confidence is None else f"{confidence:.2f}",
        "held": f"{review['held']:,}",
        "escalated": f"{review['escalated']:,}",
        "approved": f"{review['approved']:,}",
        "rejected": f"{review['rejected']:,}",
    }


def _row(figures: dict[str, Any], first: str, attrs: str) -> str:
    cells = _cells(figures)
    tds = "".join(f'<td data-key="{key}">{_e(cells[key])}</td>' for key, _ in TABLE_COLUMNS)
    return f"<tr {attrs}><td>{first}</td>{tds}</tr>"


def _table(report: Report) -> str:
    head = "".join(f"<th>{_e(heading)}</th>" for _, heading in TABLE_COLUMNS)
    rows = "\n".join(
        _row(figures, _e(name), f'data-agent="{_e(name)}"')
        for name, figures in report.agents.items()
    )
    total = _row(report.total, "All agents", 'class="total"')
    return (
        '<div class="figures"><table>'
        f"<thead><tr><th>Agent</th>{head}</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n<tfoot>{total}</tfoot></table></div>"
    )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count:,} times"


def _errors(report: Report) -> str:
    parts = []
    for name, figures in report.agents.items():
        top = figures["errors"]["top"]
        if not top:
            continue
        items = "".join(
            f'<li data-count="{error["count"]}"><strong>{_times(error["count"])}</strong> '
            f"<code>{_e(error['message'])}</code> (last {_e(error['last_at'])})</li>"
            for error in top
        )
        parts.append(f'<h3 data-agent="{_e(name)}">{_e(name)}</h3><ul class="errors">{items}</ul>')
    return "\n".join(parts) if parts else "<p>No errors in this period.</p>"


def render_html(report: Report, *, generated_at: datetime | None = None) -> str:
    """The report as one self-contained HTML page (no script, nothing fetched)."""
    total = report.total
    rate = total["success_rate"]
    when = (generated_at or datetime.now(UTC)).astimezone(UTC)
    summary = (
        f"{total['runs']:,} runs of {len(report.agents):,} agent(s)"
        + ("" if rate is None else f", {rate * 100:.1f}% succeeded")
        + f", {total['errors']['total']:,} errors, {usd(total['cost_usd'])} spent"
    )
    period = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    capped = len(report.series.points) > MAX_POINTS
    note = f"<p>The {MAX_POINTS:,} most recent runs.</p>" if capped else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>agentops report: {_e(period)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>agentops report</h1>
<p class="period">{_e(period)}</p>
<p class="summary">{_e(summary)}</p>
<section id="runs"><h2>Runs over time</h2>
{_runs_chart(report)}
{_legend(report)}
</section>
<section id="durations"><h2>Duration per run</h2>
{_durations_chart(report)}
{note}</section>
<section id="cost"><h2>Cost per day</h2>
{_cost_chart(report)}
</section>
<section id="figures"><h2>Figures</h2>
{_table(report)}
</section>
<section id="errors"><h2>Commonest errors</h2>
{_errors(report)}
</section>
<footer>Generated by agentops {_e(__version__)} at {when:%Y-%m-%d %H:%M} UTC from the agents'
logs. Statuses: succeeded and held count as success; see the README for every figure.</footer>
</body>
</html>
"""
