"""Analyst: what the sales figures say.

Asks a model for an analysis of a local CSV file, as a validated
``Analysis``. When every model is down, ``fallback()`` analyses the figures
by rule; when that fails too (the file is unreadable, say), it reports the
raw figures it could read. Each run notes what it concluded, and the next
run recalls the most relevant earlier conclusions for the model.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agentops import Context

Trend = Literal["up", "down", "flat"]


class Params(BaseModel):
    """Where the figures are (relative to the home)."""

    data: str = "agents/analyst/data/sales.csv"


class Analysis(BaseModel):
    """What the model is asked to reply with."""

    trend: Trend
    summary: str = Field(max_length=600)
    confidence: float = Field(ge=0, le=1)


class Result(BaseModel):
    """The analysis, and where it came from."""

    trend: Trend | None
    summary: str
    source: Literal["model", "rules", "raw"]
    months: int


def read_figures(ctx: Context, params: Params) -> list[dict[str, str]]:
    """The CSV file's rows."""
    path = Path(params.data)
    path = path if path.is_absolute() else ctx.home / path
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(params: Params, ctx: Context) -> Result:
    """Ask the models, with the figures as untrusted data and the last conclusion."""
    rows = read_figures(ctx, params)
    table = "\n".join(f"{r['month']}: {r['orders']} orders, {r['revenue_usd']} USD" for r in rows)
    earlier = [note.text for note in ctx.memory.relevant("sales revenue trend", k=3)]
    prompt = [
        {
            "role": "system",
            "content": "You are a careful business analyst. Be brief and concrete.",
        },
        {
            "role": "user",
            "content": (
                "Monthly sales:\n"
                + ctx.llm.untrusted(table, source=params.data)
                + ("\nEarlier conclusions:\n- " + "\n- ".join(earlier) if earlier else "")
                + "\nWhat is the trend, and what stands out?"
            ),
        },
    ]
    reply = ctx.llm.complete(prompt, schema=Analysis)
    analysis: Analysis = reply.parsed
    # Noted only if this run succeeds; the next runs recall the most relevant.
    ctx.memory.note(
        f"{rows[0]['month']} to {rows[-1]['month']}: {analysis.summary}",
        tags=["sales", analysis.trend],
        importance=max(1, round(analysis.confidence * 10)),
    )
    ctx.log.info("analysis.made", model=reply.model, cached=reply.cached, cost_usd=reply.cost_usd)
    return Result(trend=analysis.trend, summary=analysis.summary, source="model", months=len(rows))


def fallback(params: Params, ctx: Context, error: Exception) -> Result:
    """No model answered: the trend by rule, else the raw figures."""
    ctx.log.warning("analysis.without_model", error=str(error))
    try:
        rows = read_figures(ctx, params)
        revenue = [float(r["revenue_usd"]) for r in rows]
        trend = rule_trend(revenue)
    except (OSError, KeyError, ValueError) as exc:
        ctx.log.warning("analysis.raw", error=str(exc))
        return Result(trend=None, summary=f"no analysis: {exc}", source="raw", months=0)
    change = (revenue[-1] - revenue[0]) / revenue[0] * 100 if revenue[0] else 0.0
    summary = f"revenue {trend} over {len(revenue)} months ({change:+.1f}% first to last)"
    ctx.memory.note(f"by rule, {summary}", tags=["sales", trend, "rules"], importance=3)
    return Result(trend=trend, summary=summary, source="rules", months=len(rows))


def rule_trend(values: list[float]) -> Trend:
    """The sign of the least-squares slope, flat within 1% of the mean a month."""
    n = len(values)
    if n < 2:  # noqa: PLR2004 - a slope needs two points
        return "flat"
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sum(
        (x - mean_x) ** 2 for x in range(n)
    )
    if abs(slope) < 0.01 * abs(mean_y):
        return "flat"
    return "up" if slope > 0 else "down"
