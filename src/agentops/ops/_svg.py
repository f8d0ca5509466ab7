"""Charts as inline SVG: a frame with axes, ticks and units, for the report's page.

A :class:`Chart` maps a time span to x and values from 0 to a round top to y,
draws the axes with their ticks (times chosen for the span: minutes for an
hour, days for a month; values at round steps, each labelled in its unit),
and holds the marks the caller adds. Everything written into the SVG that
could come from a log is escaped by :func:`escape`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HEIGHT", "WIDTH", "Chart", "escape", "time_ticks", "value_ticks"]

WIDTH, HEIGHT = 720, 240
"""The chart's own coordinates (the page scales it)."""

_LEFT, _RIGHT, _TOP, _BOTTOM = 76, 40, 14, 42
_PLOT_W, _PLOT_H = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
_BASE = _TOP + _PLOT_H

_TIME_STEPS = (
    60,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
    91 * 86400,
    364 * 86400,
)
"""The spacings time ticks can have, in seconds."""

_MAX_TIME_TICKS = 8
_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: week ticks fall on Mondays


def escape(value: object) -> str:
    """Text (or an attribute value) safe to put in HTML or SVG: agent output is untrusted."""
    return html.escape(str(value), quote=True)


def value_ticks(peak: float, *, least: float, whole: bool = False) -> list[float]:
    """Round ticks from 0 up to at least ``peak`` (or ``least``, if more): four or five steps.

    Steps are 1, 2, 2.5 or 5 times a power of ten (no 2.5 for ``whole``
    numbers, and no step under 1).
    """
    top = max(peak, least)
    rough = top / 4
    power = 10.0 ** math.floor(math.log10(rough))
    multiples = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in multiples if m * power >= rough * (1 - 1e-9))
    if whole:
        step = max(1.0, round(step))
    count = max(1, math.ceil(top / step * (1 - 1e-9)))
    return [index * step for index in range(count + 1)]


def time_ticks(start: datetime, end: datetime, *, days: bool = False) -> list[tuple[datetime, str]]:
    """Round moments between ``start`` and ``end``, and their labels (in UTC, for the span).

    With ``days``, ticks are whole days apart at least.
    """
    span = max((end - start).total_seconds(), 1.0)
    steps = [s for s in _TIME_STEPS if not days or s >= 86400]  # noqa: PLR2004 - a day
    step = next((s for s in steps if span / s <= _MAX_TIME_TICKS), steps[-1])
    offset = (start - _EPOCH).total_seconds() % step
    tick = start + timedelta(seconds=(step - offset) % step)
    ticks: list[tuple[datetime, str]] = []
    while tick <= end:
        ticks.append((tick, _time_label(tick, step, first=not ticks)))
        tick += timedelta(seconds=step)
    return ticks


def _time_label(moment: datetime, step: int, *, first: bool) -> str:
    if step >= 86400:  # noqa: PLR2004 - a day
        return f"{moment:%b %d}"
    if first or (moment.hour == 0 and moment.minute == 0):
        return f"{moment:%b %d %H:%M}"
    return f"{moment:%H:%M}"


@dataclass
class Chart:
    """One chart: a time span across, values from 0 to the top tick up, and its marks."""

    title: str
    start: datetime
    end: datetime
    ticks: list[float]
    """The value ticks, from 0 up: the last is the top of the y axis."""
    label: Callable[[float], str]
    """How a value is written on the y axis, with its unit."""
    unit: str
    """What the y axis counts, written along it."""
    days: bool = False
    """Whether the time ticks are whole days apart at least."""
    marks: list[str] = field(default_factory=list)

    def x(self, moment: datetime) -> float:
        """Where ``moment`` is across."""
        span = (self.end - self.start).total_seconds() or 1.0
        return _LEFT + (moment - self.start).total_seconds() / span * _PLOT_W

    def y(self, value: float) -> float:
        """Where ``value`` is up (0 on the axis)."""
        return _BASE - value / self.ticks[-1] * _PLOT_H

    def svg(self) -> str:
        """The chart as SVG."""
        parts = [
            (
                f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
                f'role="img" aria-label="{escape(self.title)}">'
            ),
            f"<title>{escape(self.title)}</title>",
        ]
        for value in self.ticks:
            y = self.y(value)
            parts.append(
                f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + _PLOT_W}" '
                f'y2="{y:.1f}" stroke="{"#bdbdbd" if value == 0 else "#eeeeee"}"/>'
            )
            parts.append(
                f'<text class="tick y" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(self.label(value))}</text>"
            )
        for moment, text in time_ticks(self.start, self.end, days=self.days):
            x = self.x(moment)
            parts.append(
                f'<line class="tick" x1="{x:.1f}" y1="{_BASE}" x2="{x:.1f}" y2="{_BASE + 5}" '
                'stroke="#9e9e9e"/>'
            )
            parts.append(
                f'<text class="tick x" x="{x:.1f}" y="{_BASE + 18}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
        parts.append(
            f'<text class="unit" x="14" y="{_TOP + _PLOT_H / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {_TOP + _PLOT_H / 2:.1f})">{escape(self.unit)}</text>'
        )
        parts.append(
            f'<text class="unit" x="{_LEFT + _PLOT_W / 2:.1f}" y="{HEIGHT - 4}" '
            'text-anchor="middle">time (UTC)</text>'
        )
        parts.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_BASE}" stroke="#bdbdbd"/>')
        parts += self.marks
        parts.append("</svg>")
        return "\n".join(parts)
