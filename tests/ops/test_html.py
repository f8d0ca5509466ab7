"""The HTML report: valid, self-contained, escaped, and right as headless Chromium renders it."""

from __future__ import annotations

import itertools
import json
import struct
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from agentops.ops.html import COST_COLOUR, STATUS_COLOURS, TABLE_COLUMNS, render_html
from agentops.ops.report import report_from_logs
from agentops.ops.series import RECENT_RUNS
from browser import chromium, parse_dom  # noqa: F401 - chromium is a fixture
from known_logs import HOSTILE_ERROR, HOSTILE_RUN, NOW, write_known_logs

WEEK_S = 7 * 86400


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The report of the known logs, written as the page `agentops report --html` writes."""
    tmp = tmp_path_factory.mktemp("html")
    report = report_from_logs(write_known_logs(tmp / "logs"), now=NOW, since_s=WEEK_S)
    path = tmp / "report.html"
    path.write_text(render_html(report, generated_at=NOW))
    return path


@pytest.fixture(scope="module")
def dom(chromium, page):  # noqa: F811 - the fixture imported above
    """The page's DOM as Chromium built it (one browser launch for the module's DOM tests)."""
    return parse_dom(chromium.dump_dom(page))


# -- the page as text ----------------------------------------------------------------------


class _Balance(HTMLParser):
    """Checks that every element is closed, in order (void elements excepted)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag, _attrs):
        self.tags[tag] += 1
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, _attrs):
        self.tags[tag] += 1

    def handle_endtag(self, tag):
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes the wrong element"


def test_the_page_is_well_formed_and_self_contained(page):
    """Balanced elements, SVGs that are well-formed XML, no script, nothing fetched."""
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    balance = _Balance()
    balance.feed(text)
    balance.close()
    assert balance.open == []
    assert balance.tags["svg"] == 3
    assert balance.tags["script"] == 0
    for tag in ("img", "link", "iframe", "object", "embed", "image", "use", "foreignobject"):
        assert balance.tags[tag] == 0, tag
    for chunk in text.split("<svg")[1:]:
        ET.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")  # noqa: S314 - our own page
    assert "default-src 'none'" in text
    outside = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http:" not in outside
    assert "https:" not in outside
    assert "url(" not in outside


def test_text_from_the_logs_is_escaped(page):
    """An error message and a run id holding markup are text, never elements or attributes."""
    text = page.read_text()
    assert "<script" not in text
    assert "onerror=alert(1)>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;&gt;&lt;img" in text
    assert "b1&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in text


def test_an_empty_period_says_so_in_one_line_without_empty_charts():
    """No runs: no chart at all, one line saying so, and the table is still there."""
    report = report_from_logs({}, now=NOW, since_s=WEEK_S)
    text = render_html(report, generated_at=NOW)
    assert "<svg" not in text
    assert "No run and nothing spent in this period." in text
    assert 'class="total"' in text


# -- the page as Chromium renders it -------------------------------------------------------


def test_runs_over_time_are_bars_per_day_stacked_by_status(dom):
    """One bar per day and status, coloured by status, counting every invocation that ended."""
    bars = dom.find("section", id="runs").find_all("rect", class_="bar")
    found = Counter()
    for bar in bars:
        assert bar.attrs["fill"] == STATUS_COLOURS[bar.attrs["data-status"]]
        found[bar.attrs["data-at"][:10], bar.attrs["data-status"]] += int(bar.attrs["data-count"])
    assert found == {
        ("2026-11-16", "succeeded"): 1,
        ("2026-11-17", "succeeded"): 1,
        ("2026-11-18", "held"): 1,
        ("2026-11-19", "failed"): 2,
        ("2026-11-20", "rejected"): 1,
        ("2026-11-20", "skipped"): 2,
        ("2026-11-20", "aborted"): 1,
        ("2026-11-21", "succeeded"): 2,
        ("2026-11-21", "crashed"): 1,
        ("2026-11-21", "timeout"): 1,
        ("2026-11-21", "skipped"): 1,
        ("2026-11-22", "timeout"): 1,
    }
    assert len(bars) == 12
    # stacked: on a day, each bar sits on the one below it
    day = sorted(
        (bar for bar in bars if bar.attrs["data-at"].startswith("2026-11-21")),
        key=lambda bar: -float(bar.attrs["y"]),
    )
    for lower, upper in itertools.pairwise(day):
        top_of_lower = float(lower.attrs["y"])
        assert float(upper.attrs["y"]) + float(upper.attrs["height"]) == pytest.approx(
            top_of_lower, abs=0.02
        )
    legend = [item.attrs["data-status"] for item in dom.find("ul", class_="legend").iter("li")]
    assert legend == [
        "succeeded",
        "held",
        "failed",
        "timeout",
        "crashed",
        "rejected",
        "skipped",
        "aborted",
    ]


def test_durations_are_one_point_per_run(dom):
    """Nine runs with a duration, each a point coloured by its status, and the p95 line."""
    section = dom.find("section", id="durations")
    points = section.find_all("circle", class_="point")
    assert sorted(float(p.attrs["data-duration"]) for p in points) == [
        1,
        2,
        2,
        3,
        4,
        5,
        10,
        20,
        30,
    ]
    statuses = Counter(p.attrs["data-status"] for p in points)
    assert statuses == {"succeeded": 4, "held": 1, "failed": 2, "rejected": 1, "timeout": 1}
    for point in points:
        assert point.attrs["fill"] == STATUS_COLOURS[point.attrs["data-status"]]
    slowest = max(points, key=lambda p: float(p.attrs["data-duration"]))
    fastest = min(points, key=lambda p: float(p.attrs["data-duration"]))
    assert float(slowest.attrs["cy"]) < float(fastest.attrs["cy"])  # up is longer
    assert len(section.find_all("line", class_="p95")) == 1
    titles = [p.find("title").all_text for p in points]
    assert any(HOSTILE_RUN in title for title in titles)  # as text, in a tooltip


def test_cost_is_one_bar_per_day_that_spent(dom):
    """Three days spent: three bars, the tallest for the most spent."""
    bars = dom.find("section", id="cost").find_all("rect", class_="cost")
    spent = {bar.attrs["data-day"]: float(bar.attrs["data-usd"]) for bar in bars}
    assert spent == {"2026-11-16": 0.1, "2026-11-17": 0.2, "2026-11-21": 1.0}
    assert {bar.attrs["fill"] for bar in bars} == {COST_COLOUR}
    heights = {bar.attrs["data-day"]: float(bar.attrs["height"]) for bar in bars}
    assert heights["2026-11-21"] == pytest.approx(10 * heights["2026-11-16"], rel=0.01)


def test_the_table_holds_the_figures(dom):
    """A row per agent and one for all of them, each cell the figure it is headed with."""
    table = dom.find("section", id="figures").find("table")
    headings = [th.all_text for th in table.find("thead").iter("th")]
    assert headings == ["Agent", *(heading for _, heading in TABLE_COLUMNS)]

    def row(element):
        return {
            td.attrs["data-key"]: td.all_text for td in element.iter("td") if "data-key" in td.attrs
        }

    alpha = row(table.find("tr", **{"data-agent": "alpha"}))
    assert alpha["runs"] == "9"
    assert alpha["success_rate"] == "44.4%"
    assert (alpha["p50"], alpha["p95"], alpha["max"]) == ("3 s", "8.5 s", "10 s")
    assert (alpha["errors"], alpha["skipped"], alpha["retries"]) == ("6", "3", "2")
    assert alpha["circuit_openings"] == "1"
    assert (alpha["committed"], alpha["actions_skipped"], alpha["undone"]) == ("3", "1", "1")
    assert (alpha["tokens"], alpha["cost_usd"], alpha["confidence"]) == ("500", "$0.30", "0.75")
    assert (alpha["held"], alpha["approved"], alpha["rejected"]) == ("1", "1", "1")
    total = row(table.find("tr", class_="total"))
    assert (total["runs"], total["success_rate"], total["p95"]) == ("11", "45.5%", "26 s")
    assert (total["tokens"], total["cost_usd"]) == ("550", "$1.30")
    assert dom.find("p", class_="summary").all_text == (
        "11 runs of 2 agent(s), 45.5% succeeded, 7 errors, $1.30 spent"
    )


def test_no_markup_from_the_logs_became_elements(dom):
    """Chromium found no script or image: the hostile message is text in a code element."""
    assert dom.find_all("script") == []
    assert dom.find_all("img") == []
    codes = [code.all_text for code in dom.find("section", id="errors").iter("code")]
    assert HOSTILE_ERROR in codes


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_rows(data: bytes, width: int) -> list[bytes]:
    """The decoded rows of an 8-bit RGB(A) PNG without interlacing (filters left in place)."""
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    channels = data[25]  # colour type: 2 RGB, 6 RGBA
    stride = 1 + width * (4 if channels == 6 else 3)
    return [raw[i : i + stride] for i in range(0, len(raw), stride)]


def test_a_screenshot_shows_a_page(chromium, page, tmp_path):  # noqa: F811
    """Chromium paints the page: a PNG of the window's size, far from blank."""
    data = chromium.screenshot(page, tmp_path / "report.png", size="1200,1600")
    assert _png_size(data) == (1200, 1600)
    assert len(data) > 30_000
    rows = _png_rows(data, 1200)
    assert len(rows) == 1600
    assert len(set(rows)) > 200  # many different rows: text, bars and points, not one colour


def test_without_chromium_the_browser_tests_skip_but_fail_in_ci(monkeypatch):
    """Not root and no chromium: a skip saying why; under CI=true, a failure instead."""
    import browser  # noqa: PLC0415 - the module itself, to patch what it sees

    monkeypatch.setattr(browser.shutil, "which", lambda _name: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="only root may apt-get install it"):
        browser.chromium_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="only root may apt-get install it"):
        browser.chromium_or_skip()


# -- the page as an operator reads it ------------------------------------------------------

GEOMETRY = """
const table = doc.querySelector('#figures table');
const cells = [...table.querySelectorAll('td')];
const page = doc.documentElement;
return {
  width: win.innerWidth,
  page_width: page.scrollWidth,
  visible_width: page.clientWidth,
  table_right: table.getBoundingClientRect().right,
  cells_right: Math.max(...cells.map(cell => cell.getBoundingClientRect().right)),
  hidden_cells: cells.filter(cell => cell.getBoundingClientRect().width === 0).length,
  smallest_font: Math.min(...cells.map(cell => parseFloat(win.getComputedStyle(cell).fontSize))),
  labels: cells.slice(0, 3).map(cell => win.getComputedStyle(cell, '::before').content),
};
"""


@pytest.mark.parametrize("width", [1280, 390])
def test_the_whole_table_is_in_the_window_at_desktop_and_phone_width(chromium, page, width):  # noqa: F811
    """At 1280 px and at 390 px nothing of the table lies past the window's right edge."""
    found = chromium.measure(page, GEOMETRY, width=width)
    assert found["width"] == width
    assert found["page_width"] <= found["visible_width"]  # no scrolling sideways
    assert found["table_right"] <= found["visible_width"]
    assert found["cells_right"] <= found["visible_width"]
    assert found["hidden_cells"] == 0
    assert found["smallest_font"] >= (13 if width == 1280 else 15)
    if width == 390:  # a card per agent: each figure labelled with its heading
        assert found["labels"][1:] == ['"Runs"', '"Success"']


def test_screenshots_at_desktop_and_phone_width(chromium, page, tmp_path):  # noqa: F811
    """Chromium paints the page at both widths: a PNG of each window, far from blank."""
    for width, height in ((1280, 2400), (390, 3600)):
        data = chromium.screenshot(page, tmp_path / f"{width}.png", size=f"{width},{height}")
        assert _png_size(data) == (width, height)
        assert len(set(_png_rows(data, width))) > 300


def _runs(now, *, minutes: int, every: int = 2, agent: str = "fresh") -> list[str]:
    """A new project's first runs: one every ``every`` minutes for the last ``minutes``."""
    lines = []
    for minute in range(minutes, 0, -every):
        at = now - timedelta(minutes=minute)
        run_id = f"{at:%Y%m%dT%H%M%SZ}-{minute:06x}"
        status = "failed" if minute % 10 == 0 else "succeeded"
        for event, data in (("run.started", {}), ("run.finished", {"status": status})):
            lines.append(
                json.dumps(
                    {"ts": at.isoformat().replace("+00:00", "Z"), "level": "info", "event": event}
                    | {"agent": agent, "run_id": run_id, "duration_s": 1.5 + minute % 3, **data}
                )
            )
    return lines


@pytest.fixture
def fresh(tmp_path):
    """A project an hour old, reported over the default seven days."""
    path = tmp_path / "fresh.jsonl"
    path.write_text("\n".join(_runs(NOW, minutes=60)) + "\n")
    return report_from_logs(
        {"fresh": path, "idle": tmp_path / "idle.jsonl"}, now=NOW, since_s=WEEK_S
    )


def test_the_charts_span_the_data_not_the_period(fresh):
    """An hour of runs in a week's report: minute bars across the chart, labelled by the clock."""
    assert fresh.chart_bucket() == "minute"
    page = render_html(fresh, generated_at=NOW)
    runs = ET.fromstring(_svg(page, "runs"))  # noqa: S314 - our own page
    bars = [element for element in runs.iter(f"{SVG}rect") if element.get("class") == "bar"]
    xs = sorted(float(bar.get("x")) for bar in bars)
    assert len({bar.get("data-at") for bar in bars}) == 30
    assert xs[0] < 120  # from the left of the chart...
    assert xs[-1] > 600  # ...to its right: not one bar at the right edge of empty days
    labels = [text.text for text in runs.iter(f"{SVG}text") if text.get("class") == "tick x"]
    assert labels[0].startswith("Nov 22 ")
    assert all(len(label) == 5 and label[2] == ":" for label in labels[1:])  # 11:15, 11:30...
    durations = ET.fromstring(_svg(page, "durations"))  # noqa: S314
    assert [text.text for text in durations.iter(f"{SVG}text") if text.get("class") == "tick x"]


def test_axes_have_round_ticks_in_their_units(fresh):
    """Counts on the run chart, seconds on the duration chart: several round ticks from 0."""
    page = render_html(fresh, generated_at=NOW)
    for section, expected in (("runs", ["0", "1"]), ("durations", ["0 s", "1 s", "2 s"])):
        svg = ET.fromstring(_svg(page, section))  # noqa: S314
        ticks = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "tick y"]
        assert ticks[: len(expected)] == expected, section
        assert len(ticks) >= 2
        units = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "unit"]
        assert "time (UTC)" in units
    assert _svg(page, "cost") is None  # nothing spent: no cost chart at all


def test_a_strip_of_each_agents_last_runs(fresh):
    """Each agent's last runs, oldest first, a square each coloured by how it ended."""
    page = render_html(fresh, generated_at=NOW)
    strips = page[page.index('<section id="recent">') : page.index("</section>")]
    squares = strips.split('<li data-agent="fresh">')[1].split("</li>")[0].count('class="run"')
    assert squares == RECENT_RUNS
    assert f'data-status="failed" style="background:{STATUS_COLOURS["failed"]}"' in strips
    last = fresh.recent["fresh"][-1]
    assert last.at == max(ending.at for ending in fresh.recent["fresh"])
    assert '<li data-agent="idle"><span class="name">idle</span>' in strips
    assert "no run in this period" in strips


SVG = "{http://www.w3.org/2000/svg}"


def _svg(page: str, section: str) -> str | None:
    """The chart of the section ``section`` of ``page`` (None if the section is not there)."""
    start = page.find(f'<section id="{section}">')
    if start < 0:
        return None
    chunk = page[start:]
    return chunk[chunk.index("<svg") : chunk.index("</svg>") + 6]
