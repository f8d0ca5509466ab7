"""The report as one self-contained HTML page: ``agentops report --html FILE``.

One file a person can open or mail around: inline CSS and inline SVG only,
no script, no font, no image, nothing fetched (a Content-Security-Policy
says so to the browser too). A strip per agent of its last runs coloured
by how they ended (as Healthchecks shows a check's history), up to three
charts (invocations over time stacked by status, the duration of each run,
the cost of each day: a chart with nothing to draw is left out), the table
of figures, and the commonest errors.

The charts span the data, not the period asked for: they begin at the
first thing they draw, in bars as wide as that span wants (minutes for a
project an hour old, days for a month), with ticks on both axes labelled
in their units. The table fits a 1280-pixel window whole; on a phone
each agent's row becomes a card of labelled figures.

Everything that comes from a log is untrusted (agent output, error messages,
even a status a hand-edited line claims): it is HTML-escaped wherever it is
written, in text and in attributes alike, and only known statuses pick a
colour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agentops import __version__
from agentops.model.status import RunStatus
from agentops.ops._svg import Chart, escape, value_ticks
from agentops.ops._table import TABLE_COLUMNS, figures_table
from agentops.ops.report import seconds, usd
from agentops.ops.series import CHART_BUCKETS, MAX_POINTS, floor

if TYPE_CHECKING:
    from agentops.ops.report import Report
    from agentops.ops.series import Ending, Point

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

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121;
       margin: 1.5em auto; max-width: 1400px; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.period { color: #616161; margin-top: 0; }
.chart { overflow-x: auto; }
.chart svg { width: 100%; min-width: 520px; max-width: 900px; height: auto; display: block; }
svg text { font-size: 12px; fill: #616161; }
svg text.unit { fill: #424242; }
.legend { list-style: none; padding: 0; margin: 0.4em 0; }
.legend li { display: inline-block; margin-right: 1em; font-size: 0.9em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em;
          vertical-align: middle; }
.strips { list-style: none; padding: 0; margin: 0; }
.strips li { display: flex; flex-wrap: wrap; align-items: center; gap: 0.2em 1em;
             margin: 0.3em 0; }
.strips .name { min-width: 10em; font-weight: 600; overflow-wrap: anywhere; }
.strip { display: flex; flex-wrap: wrap; gap: 2px; }
.strip .run { display: inline-block; width: 10px; height: 18px; border-radius: 2px; }
.strip .none { color: #9e9e9e; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border: 1px solid #e0e0e0; padding: 0.25em 0.22em; text-align: right; }
th { font-weight: 600; font-size: 11.5px; vertical-align: bottom; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; min-width: 6em;
                                overflow-wrap: anywhere; }
thead th { background: #f5f5f5; }
tfoot td { font-weight: bold; background: #fafafa; }
code { white-space: pre-wrap; word-break: break-word; }
footer { color: #9e9e9e; font-size: 0.8em; margin-top: 3em; }
@media (max-width: 760px) {
  body { margin: 1em auto; }
  svg text { font-size: 16px; }
  table, tbody, tfoot, tr, td { display: block; width: auto; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { border: 1px solid #e0e0e0; border-radius: 4px; margin: 0 0 0.8em; padding: 0.2em 0; }
  td { border: 0; display: flex; justify-content: space-between; gap: 1em;
       padding: 0.15em 0.6em; white-space: normal; font-size: 15px; }
  td::before { content: attr(data-label); color: #616161; text-align: left; }
  td:first-child { font-weight: 600; font-size: 16px; }
  td:first-child::before { content: none; }
}
"""


def _chart_span(report: Report) -> tuple[datetime, datetime, str]:
    """Where the time charts begin and end, and the width of the run chart's bars."""
    bucket = report.chart_bucket()
    starts = report.chart_buckets()
    return starts[0], starts[-1] + timedelta(seconds=CHART_BUCKETS[bucket]), bucket


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _dollars(value: float) -> str:
    """An axis label in USD: cents only where the steps are cents."""
    return f"${value:,.0f}" if value >= 10 else usd(value)  # noqa: PLR2004


def _runs_chart(report: Report) -> str | None:
    bucket = report.chart_bucket()
    runs = report.series.counts(bucket)
    if not runs:
        return None
    start, end, bucket = _chart_span(report)
    peak = max(sum(counts.values()) for counts in runs.values())
    chart = Chart(
        f"Invocations per {bucket}, by how they ended",
        start,
        end,
        value_ticks(peak, least=1, whole=True),
        _count,
        f"invocations per {bucket}",
    )
    step = timedelta(seconds=CHART_BUCKETS[bucket])
    for at, counts in sorted(runs.items()):
        left, right = chart.x(at), chart.x(at + step)
        gap = 1.0 if right - left > 4 else 0.0  # noqa: PLR2004 - thin bars touch
        below = 0
        for status, colour in STATUS_COLOURS.items():
            count = counts.get(status, 0)
            if not count:
                continue
            top, bottom = chart.y(below + count), chart.y(below)
            below += count
            chart.marks.append(
                f'<rect class="bar" data-status="{escape(status)}" data-count="{count}" '
                f'data-at="{escape(at.isoformat())}" x="{left + gap / 2:.2f}" y="{top:.2f}" '
                f'width="{max(right - left - gap, 0.5):.2f}" height="{bottom - top:.2f}" '
                f'fill="{colour}"><title>{escape(_when(at, bucket))}: {count} '
                f"{escape(status)}</title></rect>"
            )
    return chart.svg()


def _when(moment: datetime, bucket: str) -> str:
    if bucket in ("day", "week"):
        return f"{bucket} of {moment:%Y-%m-%d}"
    return f"{bucket} from {moment:%Y-%m-%d %H:%M} UTC"


def _durations_chart(report: Report) -> str | None:
    points: list[Point] = report.series.points
    if not points:
        return None
    start, end, _bucket = _chart_span(report)
    peak = max(point.duration_s for point in points)
    chart = Chart(
        "Duration of each run", start, end, value_ticks(peak, least=0.01), seconds, "duration"
    )
    p95 = report.total["duration_s"]["p95"]
    if p95 is not None:
        y = chart.y(p95)
        chart.marks.append(
            f'<line class="p95" x1="{chart.x(start):.2f}" y1="{y:.2f}" x2="{chart.x(end):.2f}" '
            f'y2="{y:.2f}" stroke="#757575" stroke-dasharray="4 3">'
            f"<title>p95 {seconds(p95)}</title></line>"
        )
        chart.marks.append(
            f'<text x="{chart.x(end):.2f}" y="{y - 4:.2f}" text-anchor="end">'
            f"p95 {seconds(p95)}</text>"
        )
    for point in points:
        colour = STATUS_COLOURS.get(RunStatus(point.status), "#000000")
        chart.marks.append(
            f'<circle class="point" data-status="{escape(point.status)}" '
            f'data-duration="{point.duration_s:g}" cx="{chart.x(point.at):.2f}" '
            f'cy="{chart.y(point.duration_s):.2f}" r="3" fill="{colour}" fill-opacity="0.75">'
            f"<title>{escape(point.agent)} {escape(point.run_id)}: "
            f"{seconds(point.duration_s)}, {escape(point.status)}</title></circle>"
        )
    return chart.svg()


def _cost_chart(report: Report) -> str | None:
    cost = {day: spent for day, spent in report.series.cost.items() if spent > 0}
    if not cost:
        return None
    day = timedelta(days=1)
    start = min(*cost, floor(report.drawn_since(), "day"))
    end = floor(report.until, "day") + day
    peak = max(cost.values())
    chart = Chart(
        "Cost per day",
        start,
        end,
        value_ticks(peak, least=0.01),
        _dollars,
        "USD per day",
        days=True,
    )
    for at, spent in sorted(cost.items()):
        left, right = chart.x(at), chart.x(at + day)
        gap = 1.0 if right - left > 4 else 0.0  # noqa: PLR2004 - thin bars touch
        top = chart.y(spent)
        chart.marks.append(
            f'<rect class="cost" data-day="{at:%Y-%m-%d}" data-usd="{spent:.6f}" '
            f'x="{left + gap / 2:.2f}" y="{top:.2f}" width="{max(right - left - gap, 0.5):.2f}" '
            f'height="{chart.y(0) - top:.2f}" fill="{COST_COLOUR}">'
            f"<title>{at:%Y-%m-%d}: {usd(spent)}</title></rect>"
        )
    return chart.svg()


def _legend(report: Report) -> str:
    seen = {status for counts in report.series.ends.values() for status in counts}
    items = [
        f'<li data-status="{escape(status)}"><span class="swatch" style="background:{colour}">'
        f"</span>{escape(status)}</li>"
        for status, colour in STATUS_COLOURS.items()
        if status in seen
    ]
    return f'<ul class="legend">{"".join(items)}</ul>' if items else ""


def _strips(report: Report) -> str:
    """Each agent's last invocations, a square each coloured by how it ended (oldest first)."""
    items = []
    for name, endings in report.recent.items():
        squares = "".join(_square(ending) for ending in endings) or (
            '<span class="none">no run in this period</span>'
        )
        items.append(
            f'<li data-agent="{escape(name)}"><span class="name">{escape(name)}</span>'
            f'<span class="strip">{squares}</span></li>'
        )
    return f'<ul class="strips">{"".join(items)}</ul>'


def _square(ending: Ending) -> str:
    colour = STATUS_COLOURS.get(RunStatus(ending.status), "#000000")
    took = "" if ending.duration_s is None else f", {seconds(ending.duration_s)}"
    return (
        f'<span class="run" data-status="{escape(ending.status)}" style="background:{colour}" '
        f'title="{ending.at:%Y-%m-%d %H:%M} UTC: {escape(ending.status)}{took} '
        f'({escape(ending.run_id)})"></span>'
    )


def _section(name: str, heading: str, body: str | None, after: str = "") -> str:
    """A section of the page; none for a chart with nothing to draw."""
    if body is None:
        return ""
    return (
        f'<section id="{name}"><h2>{heading}</h2>\n'
        f'<div class="chart">{body}</div>\n{after}</section>\n'
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
            f"<code>{escape(error['message'])}</code> (last {escape(error['last_at'])})</li>"
            for error in top
        )
        parts.append(
            f'<h3 data-agent="{escape(name)}">{escape(name)}</h3><ul class="errors">{items}</ul>'
        )
    return "\n".join(parts) if parts else "<p>No errors in this period.</p>"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _tools(report: Report) -> str:
    # Per agent and tool: the calls a model made, those that failed, their p95; then
    # the tools offered that no model called in the period.
    rows = []
    for name, figures in report.agents.items():
        rows += [
            f'<tr data-agent="{escape(name)}" data-tool="{escape(tool)}"><td>{escape(name)}</td>'
            f"<td><code>{escape(tool)}</code></td><td>{found['calls']:,}</td>"
            f"<td>{found['errors']:,}</td>"
            f"<td>{_ms(found['p95_ms'])}</td></tr>"
            for tool, found in figures["tools"].items()
        ]
        rows += [
            f'<tr data-agent="{escape(name)}" data-tool="{escape(tool)}" class="never">'
            f"<td>{escape(name)}</td><td><code>{escape(tool)}</code></td>"
            "<td>0</td><td>-</td><td>never called</td></tr>"
            for tool in figures["tools_never_called"]
        ]
    if not rows:
        return "<p>No tool was offered to a model in this period.</p>"
    head = "<tr><th>Agent</th><th>Tool</th><th>Calls</th><th>Errors</th><th>p95</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


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
    capped = report.series.point_count > MAX_POINTS
    note = f"<p>The {MAX_POINTS:,} most recent runs.</p>" if capped else ""
    charts = (
        _section("runs", "Runs over time", _runs_chart(report), _legend(report))
        + _section("durations", "Duration per run", _durations_chart(report), note)
        + _section("cost", "Cost per day", _cost_chart(report))
    ) or '<p class="nothing">No run and nothing spent in this period.</p>\n'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>agentops report: {escape(period)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>agentops report</h1>
<p class="period">{escape(period)}</p>
<p class="summary">{escape(summary)}</p>
<section id="recent"><h2>Last runs</h2>
{_strips(report)}
</section>
{charts}<section id="figures"><h2>Figures</h2>
{figures_table(report)}
</section>
<section id="errors"><h2>Commonest errors</h2>
{_errors(report)}
</section>
<section id="tools"><h2>Tools</h2>
{_tools(report)}
</section>
<footer>Generated by agentops {escape(__version__)} at {when:%Y-%m-%d %H:%M} UTC from the agents'
logs. Statuses: succeeded and held count as success; see the README for every figure.</footer>
</body>
</html>
"""
