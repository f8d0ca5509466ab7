"""How the agents did: ``agentops report``."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentops.cli._common import clip, print_table, project_of, reports_errors, since_option

if TYPE_CHECKING:
    from agentops.ops.report import Report

__all__ = ["report"]


@click.command()
@click.argument("agent", required=False)
@since_option("7d", "The period, counted back from now (24h, 7d, 30d; default 7d).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the figures as JSON (documented keys)."
)
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Also write one self-contained HTML page with charts to FILE (- for stdout).",
)
@click.option("--removed", is_flag=True, help="Also the logs of agents no longer in agents/.")
@click.pass_context
@reports_errors
def report(
    ctx: click.Context,
    *,
    agent: str | None,
    since: float,
    as_json: bool,
    html_path: Path | None,
    removed: bool,
) -> None:
    """Figures of every agent (or AGENT) over a period, from their logs.

    Runs, success rate, p50/p95/max duration, errors by category, retries,
    circuit openings, guarded actions, tokens, cost, confidence and review.
    Reads only the logs (rotated ones too): no agent code runs, no lock is
    taken. An agent removed from agents/ is left out unless --removed (or
    named as AGENT).
    """
    from agentops.ops.logs import agent_log  # noqa: PLC0415
    from agentops.ops.report import build_report  # noqa: PLC0415

    if as_json and html_path is not None and str(html_path) == "-":
        raise click.UsageError("--json and --html - would both print on stdout")
    project = project_of(ctx)
    names = None
    if agent is not None:
        agent_log(project, agent)  # an agent, or a log left by one
        names = [agent]
    now = datetime.now(UTC)
    result = build_report(project, names, now=now, since_s=since, removed=removed)
    if html_path is not None:
        _write_html(result, html_path, now=now)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    elif html_path is None or str(html_path) != "-":
        _print(result)
        if html_path is not None:
            click.echo(f"wrote {html_path}")


def _write_html(result: Report, path: Path, *, now: datetime) -> None:
    from agentops._infra.fs import FileSystem, describe  # noqa: PLC0415
    from agentops.errors import StateError  # noqa: PLC0415
    from agentops.ops.html import render_html  # noqa: PLC0415

    page = render_html(result, generated_at=now)
    if str(path) == "-":
        click.echo(page, nl=False)
        return
    try:
        FileSystem().replace(Path(os.path.abspath(path)), page.encode(), durable=False)  # noqa: PTH100 - no link resolved
    except OSError as exc:
        raise StateError(f"{path}: cannot write the report: {describe(exc)}") from exc


def _print(result: Report) -> None:
    click.echo(
        f"{result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC"
        f" ({len(result.agents)} agent(s))"
    )
    if not result.agents:
        click.echo("no agents")
        return
    rows = [[name, *_cells(figures)] for name, figures in result.agents.items()]
    if len(result.agents) > 1:
        rows.append(["(all)", *_cells(result.total)])
    print_table(
        [
            "AGENT",
            "RUNS",
            "OK",
            "P50",
            "P95",
            "MAX",
            "ERRORS",
            "SKIPPED",
            "RETRIES",
            "CIRCUIT",
            "ACTIONS",
            "TOKENS",
            "COST",
        ],
        rows,
    )
    for name, figures in result.agents.items():
        lines = _details(figures)
        if lines:
            click.echo(f"\n{name}:")
            for line in lines:
                click.echo(f"  {line}")


def _cells(figures: dict[str, Any]) -> list[str]:
    from agentops.ops.report import seconds, usd  # noqa: PLC0415

    duration, actions = figures["duration_s"], figures["actions"]
    rate = figures["success_rate"]
    return [
        str(figures["runs"]),
        "-" if rate is None else f"{rate * 100:.1f}%",
        seconds(duration["p50"]),
        seconds(duration["p95"]),
        seconds(duration["max"]),
        str(figures["errors"]["total"]),
        str(figures["statuses"]["skipped"]),
        str(figures["retries"]["total"]),
        str(figures["circuit_openings"]),
        f"{actions['committed']}/{actions['skipped']}/{actions['undone']}",
        f"{figures['tokens']:,}",
        usd(figures["cost_usd"]),
    ]


def _details(figures: dict[str, Any]) -> list[str]:
    """The figures the table has no room for, when there is something to say."""
    from agentops._infra.terminal import printable  # noqa: PLC0415
    from agentops.ops.report import seconds  # noqa: PLC0415

    lines = []
    errors = {k: n for k, n in figures["errors"]["by_category"].items() if n}
    if errors:
        lines.append("errors: " + ", ".join(f"{k} {n}" for k, n in errors.items()))
    lines += [
        f"  {error['count']} x {clip(printable(error['message']), 100)}"
        for error in figures["errors"]["top"]
    ]
    if figures["skip_reasons"]:
        lines.append(
            "skipped: " + ", ".join(f"{k} {n}" for k, n in figures["skip_reasons"].items())
        )
    if figures["retries"]["by_category"]:
        retries = figures["retries"]["by_category"].items()
        lines.append("retries: " + ", ".join(f"{k} {n}" for k, n in retries))
    confidence, review = figures["confidence"], figures["review"]
    if confidence["count"]:
        lines.append(
            f"confidence: {confidence['count']} result(s), mean {confidence['mean']:.2f}, "
            f"min {confidence['min']:.2f}"
        )
    if any(review.values()):
        lines.append("review: " + ", ".join(f"{k} {n}" for k, n in review.items()))
    more = [
        key
        for key in ("degraded", "recovered", "deadline_passed", "unfinished", "dry_runs")
        if figures[key]
    ]
    if more:
        lines.append(", ".join(f"{key.replace('_', ' ')} {figures[key]}" for key in more))
    if figures["unreadable_lines"]:
        lines.append(f"{figures['unreadable_lines']} line(s) not readable as log events")
    lines += [
        f"tool {name}: {tool['calls']} call(s), {tool['errors']} error(s), "
        f"p95 {seconds(None if tool['p95_ms'] is None else tool['p95_ms'] / 1000)}"
        for name, tool in figures["tools"].items()
    ]
    if figures["tools_never_called"]:
        lines.append("tools never called: " + ", ".join(figures["tools_never_called"]))
    return lines
