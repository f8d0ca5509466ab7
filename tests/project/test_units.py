"""Durations, rates and sizes as people write them in TOML, and what is refused."""

from __future__ import annotations

import math

import pytest
from pydantic import TypeAdapter, ValidationError

from agentops.project.units import (
    MAX_DURATION_S,
    Duration,
    PositiveDuration,
    Rate,
    RateSpec,
    parse_duration,
    parse_positive_duration,
    parse_rate,
    parse_size,
)

# parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172_800.0),
        ("1w", 604_800.0),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (" 5M ", 300.0),
    ],
)
def test_parse_duration_reads_unit_text(text, seconds):
    """'30s', '5m', '1h30m' and '2d' are read as seconds, case and padding aside."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("1ms", 0.001), ("1s500ms", 1.5), ("1m30s250ms", 90.25), ("2.5ms", 0.0025)],
)
def test_parse_duration_reads_milliseconds(text, seconds):
    """'500ms' is half a second, alone or after other units; 'ms' is not read as 'm' then 's'."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("number", "seconds"), [(0, 0.0), (45, 45.0), (2.5, 2.5)])
def test_parse_duration_takes_plain_numbers_as_seconds(number, seconds):
    """A TOML number is a number of seconds, returned as a float."""
    result = parse_duration(number)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value", ["", "5 minutes", "m5", "soon", "5x", "1h 30m", "-5m", "5ms5", None, [], {"m": 5}]
)
def test_parse_duration_refuses_text_that_is_not_a_duration(value):
    """Anything but number-unit pairs is refused with an example of the format."""
    with pytest.raises(ValueError, match=r"expected a duration like '500ms', '30s'"):
        parse_duration(value)


@pytest.mark.parametrize(
    "value",
    [
        "٣s",  # Arabic-Indic three
        "\uff13m",  # fullwidth three
        "1_000s",  # Python's digit separator
        "1\u066b5h",  # Arabic decimal separator
    ],
)
def test_parse_duration_counts_only_ascii_digits(value):
    """Digits other than 0-9, and underscores, are refused: a duration reads the same everywhere."""
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_parse_duration_refuses_negative_numbers(value):
    """A negative number of seconds is refused, saying it is negative."""
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_refuses_booleans(value):
    """`timeout = true` is a mistake, not one second."""
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_parse_duration_refuses_nan_and_infinity(value):
    """TOML's `nan` and `inf` are not durations: every run would fail on them."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [1e300, "999999999999999w", MAX_DURATION_S + 1, "3661d"])
def test_parse_duration_refuses_durations_too_long_to_time(value):
    """A timeout beyond ten years is refused, not a crash of every run."""
    with pytest.raises(ValueError, match="at most ten years"):
        parse_duration(value)


def test_parse_duration_accepts_exactly_ten_years():
    """The longest duration accepted is ten years to the second."""
    assert parse_duration(MAX_DURATION_S) == MAX_DURATION_S


@pytest.mark.parametrize(
    ("value", "said"),
    [(10**400, "at most ten years"), (-(10**400), "cannot be negative")],
    ids=["huge", "huge and negative"],
)
def test_parse_duration_refuses_an_integer_too_large_for_a_float(value, said):
    """`timeout = ±1000…000` (tomllib's integers have no size) is refused, its digits counted.

    Found by the fuzz test: a negative one of 309 digits crashed every run
    (``OverflowError`` from ``isfinite``, exit 70).
    """
    with pytest.raises(ValueError, match=said) as refused:
        parse_duration(value)
    assert str(refused.value).endswith("got a number of 401 digits")


# parse_positive_duration


@pytest.mark.parametrize("value", [0, 0.0, "0s", "0ms", "0h0m"])
def test_parse_positive_duration_refuses_zero(value):
    """A zero cooldown, retry wait or ledger keep is always a mistake: refused, saying so."""
    with pytest.raises(ValueError, match="must be longer than zero"):
        parse_positive_duration(value)


@pytest.mark.parametrize(("value", "seconds"), [("1ms", 0.001), (1, 1.0), ("2h", 7200.0)])
def test_parse_positive_duration_accepts_any_duration_above_zero(value, seconds):
    """However short, a duration above zero is accepted as it is."""
    assert parse_positive_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", True, -1, math.nan])
def test_parse_positive_duration_refuses_what_parse_duration_refuses(value):
    """Everything that is not a duration at all is refused the same way."""
    with pytest.raises(ValueError, match="duration"):
        parse_positive_duration(value)


# parse_rate


@pytest.mark.parametrize(
    ("text", "count", "period_s"),
    [
        ("4/hour", 4, 3600.0),
        ("10/minute", 10, 60.0),
        ("10/min", 10, 60.0),
        ("2/second", 2, 1.0),
        ("100/day", 100, 86_400.0),
        ("1/week", 1, 604_800.0),
        ("3/15m", 3, 900.0),
        ("2/1h30m", 2, 5400.0),
        ("5/500ms", 5, 0.5),
        ("0/hour", 0, 3600.0),
        ("04/hour", 4, 3600.0),
    ],
)
def test_parse_rate_reads_count_and_period(text, count, period_s):
    """'4/hour', '10/minute', '3/15m' and '5/500ms' give the count and the window in seconds."""
    rate = parse_rate(text)
    assert (rate.count, rate.period_s) == (count, period_s)


def test_parse_rate_keeps_the_text_as_written():
    """A rate prints as the operator wrote it, without the padding."""
    rate = parse_rate(" 4/Hour ")
    assert (rate.count, rate.period_s) == (4, 3600.0)
    assert str(rate) == "4/Hour"
    assert repr(rate) == "Rate('4/Hour')"


def test_parse_rate_returns_a_rate_unchanged():
    """An already parsed rate passes through as it is."""
    rate = Rate(count=4, period_s=3600.0, text="4/hour")
    assert parse_rate(rate) is rate


def test_rates_that_allow_the_same_are_equal():
    """'4/hour' and '4/60m' are the same limit: equal, and one key in a dict."""
    assert parse_rate("4/hour") == parse_rate("4/60m")
    assert len({parse_rate("4/hour"), parse_rate("4/60m")}) == 1
    assert parse_rate("4/hour") != parse_rate("5/hour")
    assert parse_rate("4/hour") != "4/hour"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "4",
        "hour",
        "4/",
        "/hour",
        "-1/hour",
        "+4/hour",
        "4.5/hour",
        "four/hour",
        "4/fortnight",
        "4/0s",
        "4/0ms",
        4,
        None,
    ],
)
def test_parse_rate_refuses_what_is_not_a_rate(value):
    """A missing count or period, a negative count or an empty window is refused."""
    with pytest.raises(ValueError, match=r"expected a rate like '4/hour'"):
        parse_rate(value)


@pytest.mark.parametrize("value", ["٣/hour", "\uff13/hour", "1_000/hour", "4/٣h"])
def test_parse_rate_counts_only_ascii_digits(value):
    """'٣/hour' and '1_000/hour' are refused, though Python's int() would read both."""
    with pytest.raises(ValueError, match=r"expected a rate like '4/hour'"):
        parse_rate(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_rate_refuses_booleans(value):
    """`runs = true` is a mistake, not a rate."""
    with pytest.raises(ValueError, match=r"expected a rate like '4/hour'"):
        parse_rate(value)


def test_parse_rate_refuses_a_window_too_long_for_a_date():
    """A window longer than a date can span is refused, not an internal error at run time."""
    with pytest.raises(ValueError, match="rate"):
        parse_rate("1/1000000000d")


# the pydantic types


def test_duration_fields_report_the_parse_error():
    """A Duration field refuses bad text with parse_duration's own message."""
    with pytest.raises(ValidationError, match="expected a duration like"):
        TypeAdapter(Duration).validate_python("soon")
    assert TypeAdapter(Duration).validate_python("0s") == 0.0


def test_positive_duration_fields_refuse_zero():
    """A PositiveDuration field refuses zero, saying it must be longer."""
    with pytest.raises(ValidationError, match="must be longer than zero"):
        TypeAdapter(PositiveDuration).validate_python("0s")


def test_a_rate_field_is_written_back_as_text():
    """A RateSpec dumps as the rate was written, so it round-trips through TOML and JSON."""
    adapter = TypeAdapter(RateSpec)
    rate = adapter.validate_python("3/15m")
    assert adapter.dump_python(rate, mode="json") == "3/15m"
    assert adapter.validate_python(adapter.dump_python(rate, mode="json")) == rate


# parse_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("10MB", 10_000_000),
        ("10mb", 10_000_000),
        ("512KiB", 524_288),
        ("1KB", 1000),
        ("2 GiB", 2 * 1024**3),
        ("1GB", 10**9),
        ("1000GB", 10**12),
        ("4096", 4096),
        ("4096b", 4096),
        (1000, 1000),
        (10**12, 10**12),
    ],
)
def test_parse_size_reads_units_and_plain_bytes(value, size):
    """'10MB' is decimal, '512KiB' binary; a bare number is a number of bytes."""
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["10TB", "1.5MB", "-1KB", "ten MB", "10 M B", 1.5, None, "٣MB"])
def test_parse_size_refuses_what_is_not_a_size(value):
    """Fractions, unknown units and non-ASCII digits are refused with an example of the format."""
    with pytest.raises(ValueError, match="expected a size like '10MB'"):
        parse_size(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_size_refuses_booleans(value):
    """`max_size = true` is a mistake, not one byte."""
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(value)


@pytest.mark.parametrize("value", [0, 999, "999", "999B", 10**12 + 1, "1024GiB"])
def test_parse_size_refuses_sizes_below_a_kilobyte_or_above_a_terabyte(value):
    """A log rotated at every line, or never, is refused: sizes lie between 1KB and 1TB."""
    with pytest.raises(ValueError, match="between 1KB and 1TB"):
        parse_size(value)
